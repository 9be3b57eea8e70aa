// Connect a container: SAS URL and blob path → Validate (each refusal with what to fix) → choose
// files and schema version → save. The SAS URL is sent, then the field is emptied: never kept.
import { api, FILE_TYPES, integrationPath, V1_FILE_TYPES, type Changed, type FileType, type IntegrationStatus, type Validated } from './api.js';
import { field, h, show } from './dom.js';
import { errorBox, noticeBox } from './errors.js';
import { time } from './format.js';

const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;
const LABELS: Record<FileType, string> = {
  deliveries: 'Deliveries',
  metrics: 'Metrics',
  subjects: 'Subjects',
  outputs: 'Outputs',
  content: 'Content (delivery_contents)',
  people: 'People',
  attributes: 'Attributes',
  events: 'Events (past 30 days, then changes)',
};
export const fileLabel = (t: FileType) => LABELS[t];

/** The connect form; `existing` makes it “Update configuration” (the SAS is still required). */
export function connectForm(workspaceId: number, current: (() => IntegrationStatus | undefined) | undefined, onSaved: (message: string) => void): HTMLElement {
  const existing = current?.();
  const sas = h('input', { type: 'text', name: 'sasUrl', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'https://account.blob.core.windows.net/container?sv=…&sr=c&si=…' });
  const path = h('input', { type: 'text', name: 'blobPath', autocomplete: 'off', spellcheck: 'false', value: existing?.destination.blobPath ?? '', placeholder: 'e.g. exports/warehouse' });
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const choose = h('div', { class: 'choose', hidden: true });
  const validate = h('button', { type: 'submit' }, 'Validate');
  const form = h(
    'form',
    { class: 'connect', novalidate: true },
    h('h3', {}, existing ? 'Update configuration' : 'Connect your Azure Blob Storage container'),
    h('p', { class: 'hint' }, 'Create a stored access policy on the container (read, add, create, write, list; a far expiry), then right-click the container, “Generate SAS” from that policy, and paste the Blob SAS URL. ', existing ? 'No matter what you change, paste the SAS URL again.' : ''),
    field('Blob SAS URL', sas, 'A container SAS (not an account SAS). Sent once to check and save it; this page never stores or shows it again.'),
    field('Blob path', path, 'Folder for the files; empty = container root. Created if missing.'),
    h('div', { class: 'buttons' }, validate),
    result,
    choose,
  );
  const reset = () => {
    choose.hidden = true;
    show(choose);
  };
  sas.addEventListener('input', reset);
  path.addEventListener('input', reset);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!choose.hidden) return;
    validate.disabled = true;
    show(result, h('p', {}, 'Checking the container (writes, lists and reads a small check file)…'));
    try {
      const v = await api<Validated>('POST', `${integrationPath(workspaceId)}/validate`, { sasUrl: sas.value.trim(), blobPath: path.value.trim() });
      const expires = v.sasExpiresOn ? Date.parse(v.sasExpiresOn) : undefined;
      show(
        result,
        noticeBox(`Valid: the app can write, list and read in ${v.account} / ${v.container} / ${v.blobPath || '(container root)'}. Permissions ${v.permissions ?? '(from the access policy)'}${v.policyId ? `, access policy “${v.policyId}”` : ''}, expires ${v.sasExpiresOn ? time(v.sasExpiresOn) : '(set by the access policy)'}.`, 'ok'),
        expires !== undefined && expires - Date.now() < EXPIRY_WARNING_MS
          ? noticeBox('This SAS expires within 14 days: exports stop then. Create a stored access policy on the container with a later expiry and generate the SAS from it.', 'warn')
          : null,
      );
      showChoice();
    } catch (err) {
      show(result, errorBox(err));
    } finally {
      validate.disabled = false;
    }
  });

  function showChoice() {
    const existing = current?.();
    const enabled = existing ? FILE_TYPES.filter((t) => existing.files[t]?.enabled) : FILE_TYPES;
    const boxes = FILE_TYPES.map((t) => {
      const box = h('input', { type: 'checkbox', name: 'files', value: t, id: `file-${t}`, checked: enabled.includes(t) });
      return h('div', { class: 'check' }, box, h('label', { for: box.id }, LABELS[t]));
    });
    const version = h('select', { name: 'schemaVersion', disabled: !!existing }, h('option', { value: 'v4', selected: existing?.schemaVersion !== 'v1' }, 'v4 (current)'), h('option', { value: 'v1', selected: existing?.schemaVersion === 'v1' }, 'v1 (legacy)'));
    const save = h('button', { type: 'button', class: 'primary' }, existing ? 'Update configuration' : 'Create and sync data');
    const saved = h('div', { 'aria-live': 'polite' });
    save.addEventListener('click', async () => {
      const files = FILE_TYPES.filter((t) => (form.querySelector<HTMLInputElement>(`#file-${t}`)!).checked);
      const schemaVersion = version.value as 'v1' | 'v4';
      save.disabled = true;
      try {
        const r = await api<Changed>('PUT', integrationPath(workspaceId), { sasUrl: sas.value.trim(), blobPath: path.value.trim(), files: schemaVersion === 'v1' ? files.filter((t) => V1_FILE_TYPES.includes(t)) : files, ...(existing ? {} : { schemaVersion }) });
        sas.value = '';
        reset();
        show(result);
        onSaved(r.startedNow.length ? `Saved. Exporting now: ${r.startedNow.join(', ')}.` : 'Saved. Subsequent syncs use the new configuration.');
      } catch (err) {
        show(saved, errorBox(err));
        save.disabled = false;
      }
    });
    show(
      choose,
      h('fieldset', {}, h('legend', {}, 'Files to export'), h('p', { class: 'hint' }, 'All are on by default; turn off what you do not need (you can change this later). A file turned on for the first time starts with its history.'), boxes),
      field('Schema version', version, existing ? 'Change it with “Upgrade to v4”.' : 'New integrations use v4; v1 knows only deliveries, metrics, subjects, outputs and people.'),
      h('div', { class: 'buttons' }, save),
      saved,
    );
    choose.hidden = false;
    save.focus();
  }
  return form;
}
