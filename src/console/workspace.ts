// One workspace: its integration's state per file, the actions (toggle, disable/enable, upgrade,
// delete, sync now), and its export history. Refreshes every few seconds while exports run.
import { api, ApiError, FILE_TYPES, integrationPath, type Changed, type FileStatus, type FileType, type IntegrationStatus } from './api.js';
import { h, show } from './dom.js';
import { errorBox, noticeBox } from './errors.js';
import { connectForm, fileLabel } from './connect.js';
import { count, duration, plural, time } from './format.js';
import { historySection } from './history.js';

const FAST_MS = 2_000;
const SLOW_MS = 15_000;

function state(f: FileStatus): { text: string; tone: 'ok' | 'busy' | 'bad' | 'off' } {
  if (!f.enabled) return { text: '○ off', tone: 'off' };
  if (f.lastError) return { text: '✕ failing', tone: 'bad' };
  if (f.running) return { text: f.initialSyncDone ? '↻ exporting changes' : '↻ initial sync running', tone: 'busy' };
  if (!f.initialSyncDone) return { text: '… waiting for initial sync', tone: 'busy' };
  if (f.pendingChanges > 0) return { text: '… changes waiting for the next sync', tone: 'busy' };
  return { text: '✓ up to date', tone: 'ok' };
}

/** Renders the workspace view into `root`; returns a function that stops its refreshes. */
export function workspaceView(root: HTMLElement, workspaceId: number): () => void {
  let timer: number | undefined;
  let stopped = false;
  const messages = h('div', { class: 'messages', 'aria-live': 'polite' });
  const status = h('div', { class: 'status' });
  const history = historySection(workspaceId);
  const say = (el: HTMLElement) => show(messages, el);
  let current: IntegrationStatus | undefined;
  // Made once: a refresh must not wipe what someone is typing or confirming.
  let reconfigure: HTMLElement | undefined;
  let deleteBox: HTMLElement | undefined;

  // After an action the exports it starts may take a moment to show: refresh fast for a while.
  let fastUntil = 0;
  async function act(run: () => Promise<Changed | { notice?: string } | unknown>, done: string) {
    fastUntil = Date.now() + 20_000;
    try {
      const r = (await run()) as { notice?: string } | undefined;
      say(noticeBox(r?.notice ? `${done} ${r.notice}` : done, 'ok'));
    } catch (e) {
      say(errorBox(e));
    }
    await load();
  }

  function fileRow(t: FileType, f: FileStatus, i: IntegrationStatus): HTMLElement {
    const st = state(f);
    const toggle = h('input', { type: 'checkbox', id: `toggle-${t}`, checked: f.enabled, disabled: !i.enabled });
    toggle.addEventListener('change', () =>
      act(() => api('PUT', `${integrationPath(workspaceId)}/files/${t}`, { enabled: toggle.checked }), `${fileLabel(t)} turned ${toggle.checked ? 'on' : 'off'}.`),
    );
    const rule = f.enabled
      ? t === 'people'
        ? 'Off for more than 7 days, People cannot be turned on again.'
        : ''
      : f.everExported
        ? 'On again: catches up with everything changed since its last export.'
        : 'On: starts with an initial sync of its history.';
    const sync = h('button', { type: 'button', id: `sync-${t}`, disabled: !f.enabled || !i.enabled }, 'Sync now');
    sync.setAttribute('aria-label', `Sync ${t} now`);
    sync.addEventListener('click', () => act(() => api('POST', `${integrationPath(workspaceId)}/files/${t}/sync`), `An export of ${t} is queued.`));
    const progress =
      f.enabled && !f.initialSyncDone && (f.running || f.pendingChanges > 0)
        ? h('div', { class: 'progress' }, h('progress', { max: f.rowsExported + f.pendingChanges, value: f.rowsExported, 'aria-label': `${t} initial sync progress` }), h('small', {}, `${count(f.rowsExported)} rows in ${plural(f.filesExported, 'file')} so far, about ${count(f.pendingChanges)} to go`))
        : null;
    return h(
      'tr',
      { 'data-file': t },
      h('th', { scope: 'row', 'data-label': 'File' }, fileLabel(t)),
      h('td', { 'data-label': 'Export' }, h('div', { class: 'check' }, toggle, h('label', { for: toggle.id }, f.enabled ? 'on' : 'off', h('span', { class: 'sr-only' }, ` (export ${t})`))), rule ? h('small', { class: 'hint' }, rule) : null),
      h('td', { 'data-label': 'State' }, h('span', { class: `badge ${st.tone}` }, st.text), progress),
      h('td', { 'data-label': 'Last export' }, time(f.lastExportAt)),
      h('td', { 'data-label': 'Sequence', class: 'num' }, f.lastSequence),
      h('td', { 'data-label': 'Rows', class: 'num' }, count(f.rowsExported)),
      h('td', { 'data-label': 'Pending', class: 'num' }, count(f.pendingChanges)),
      h('td', { 'data-label': 'Lag', class: 'num' }, duration(f.lagSeconds)),
      h('td', { 'data-label': 'Last error' }, f.lastError ? [h('code', {}, f.lastError.code), ' ', f.lastError.message, h('small', { class: 'hint' }, ` (${time(f.lastError.at)})`)] : '–'),
      h('td', { 'data-label': 'Action' }, sync),
    );
  }

  function deleteControls(): HTMLElement {
    const confirmBox = h(
      'div',
      { class: 'confirm', hidden: true, role: 'group', 'aria-label': 'Confirm delete' },
      h('p', {}, `Delete the integration of workspace ${workspaceId}? Exports stop and its settings are removed. Files already in your container stay there. Creating it again later starts every file with an initial sync.`),
      h('button', { type: 'button', class: 'danger', onclick: () => act(() => api('DELETE', integrationPath(workspaceId)), 'Integration deleted.') }, 'Yes, delete the integration'),
      h('button', { type: 'button', onclick: () => (confirmBox.hidden = true) }, 'Cancel'),
    );
    const ask = h('button', { type: 'button', class: 'danger', onclick: () => ((confirmBox.hidden = false), confirmBox.querySelector('button')!.focus()) }, 'Delete integration…');
    return h('div', {}, ask, confirmBox);
  }

  function render(i: IntegrationStatus) {
    const d = i.destination;
    const files = FILE_TYPES.filter((t) => i.files[t]).map((t) => [t, i.files[t]!] as const);
    const running = files.some(([, f]) => f.running || (f.enabled && f.pendingChanges > 0 && !f.initialSyncDone));
    const toggleSync = i.enabled
      ? h('button', { type: 'button', onclick: () => act(() => api('POST', `${integrationPath(workspaceId)}/disable`), 'Sync disabled.') }, 'Disable sync')
      : h('button', { type: 'button', class: 'primary', onclick: () => act(() => api('POST', `${integrationPath(workspaceId)}/enable`), 'Sync enabled.') }, 'Enable sync');
    current = i;
    reconfigure ??= h('details', { class: 'reconfigure' }, h('summary', {}, 'Manage configuration (new SAS URL, path, files)'), connectForm(workspaceId, () => current, (m) => (say(noticeBox(m, 'ok')), void load())));
    deleteBox ??= deleteControls();
    const focused = document.activeElement?.id;
    show(
      status,
      h(
        'section',
        { 'aria-labelledby': 'summary-title', class: 'summary' },
        h('h2', { id: 'summary-title' }, 'Integration'),
        h(
          'dl',
          {},
          h('dt', {}, 'Sync'),
          h('dd', {}, h('span', { class: `badge ${i.enabled ? 'ok' : 'off'}` }, i.enabled ? '✓ enabled' : '○ disabled')),
          h('dt', {}, 'Destination'),
          h('dd', {}, `${d.account} / ${d.container} / ${d.blobPath || '(container root)'}`),
          h('dt', {}, 'SAS'),
          h('dd', {}, `expires ${time(d.sasExpiresOn)}; permissions ${d.permissions ?? '–'}${d.accessPolicy ? `; access policy “${d.accessPolicy}”` : ''}`),
          h('dt', {}, 'Schema version'),
          h('dd', {}, i.schemaVersion),
          h('dt', {}, 'Updated'),
          h('dd', {}, time(i.updatedAt)),
        ),
        i.warnings.map((w) => noticeBox(w, 'warn')),
        h(
          'div',
          { class: 'buttons' },
          toggleSync,
          i.schemaVersion === 'v1' ? h('button', { type: 'button', onclick: () => act(() => api('POST', `${integrationPath(workspaceId)}/upgrade`, { schemaVersion: 'v4' }), 'Upgraded to v4.') }, 'Upgrade to v4') : null,
          deleteBox,
        ),
        h(
          'p',
          { class: 'hint' },
          i.enabled
            ? 'Disabling stops all exports. Enabling again later sends all history again, as a new integration would: clear the old files from your container first. To pause one file, turn it off below instead.'
            : 'Enabling sends all history again, as a new integration would. Clear the files of the previous sync from your container first.',
          i.schemaVersion === 'v1' ? ' Upgrading to v4 changes file names and schemas from the next sync and sends subjects and outputs again from the beginning: delete their rows in your warehouse first.' : '',
        ),
        reconfigure,
      ),
      h(
        'section',
        { 'aria-labelledby': 'files-title' },
        h('h2', { id: 'files-title' }, 'Files'),
        h(
          'table',
          { class: 'cards files' },
          h('caption', {}, running ? 'Exports running — this view refreshes every 2 seconds' : 'Each file type’s export'),
          h('thead', {}, h('tr', {}, ['File', 'Export', 'State', 'Last export', 'Sequence', 'Rows', 'Pending', 'Lag', 'Last error', 'Action'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, files.map(([t, f]) => fileRow(t, f, i))),
        ),
      ),
    );
    if (focused) document.getElementById(focused)?.focus();
    return running;
  }

  async function load(): Promise<void> {
    if (stopped) return;
    window.clearTimeout(timer);
    let running = false;
    try {
      const i = await api<IntegrationStatus>('GET', integrationPath(workspaceId));
      if (stopped) return;
      running = render(i);
      if (!history.element.isConnected) root.append(history.element);
      await history.refresh();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'integration_not_found') {
        history.element.remove();
        reconfigure = deleteBox = current = undefined;
        show(status, h('p', {}, `Workspace ${workspaceId} has no integration yet.`), connectForm(workspaceId, undefined, (m) => (say(noticeBox(m, 'ok')), void load())));
        return;
      }
      show(status, errorBox(e));
    }
    if (!stopped) timer = window.setTimeout(load, running || Date.now() < fastUntil ? FAST_MS : SLOW_MS);
  }

  show(root, h('h1', {}, `Workspace ${workspaceId}`), messages, status);
  void load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
