// The operator's view: every integration with lag, pending changes, errors and running exports,
// sortable, with “sync now”; the poison queue decoded, with replay. Uses the operations routes.
import { api, integrationPath, type FileType, type IntegrationLag, type PoisonMessage } from './api.js';
import { h, show } from './dom.js';
import { errorBox, noticeBox } from './errors.js';
import { count, duration, time } from './format.js';

type SortKey = 'workspaceId' | 'pendingChanges' | 'maxLagSeconds' | 'errors';
const REFRESH_MS = 5_000;

const errorsOf = (i: IntegrationLag) => [...(i.error ? [i.error.code] : []), ...Object.entries(i.files).filter(([, f]) => f?.lastError).map(([t, f]) => `${t}: ${f!.lastError}`)];
const runningOf = (i: IntegrationLag) => Object.entries(i.files).filter(([, f]) => f?.running).map(([t]) => t);

export function operatorView(root: HTMLElement): () => void {
  let sort: { key: SortKey; descending: boolean } = { key: 'maxLagSeconds', descending: true };
  let list: IntegrationLag[] = [];
  let timer: number | undefined;
  let stopped = false;
  const messages = h('div', { 'aria-live': 'polite' });
  const table = h('div', { class: 'integrations' });
  const poison = h('div', { class: 'poison' });
  const say = (el: HTMLElement) => show(messages, el);

  function header(label: string, key?: SortKey): HTMLElement {
    if (!key) return h('th', { scope: 'col' }, label);
    const active = sort.key === key;
    const button = h('button', { type: 'button', class: 'sort', id: `sort-${key}` }, label, h('span', { 'aria-hidden': 'true' }, active ? (sort.descending ? ' ▼' : ' ▲') : ' ↕'));
    button.addEventListener('click', () => {
      sort = { key, descending: active ? !sort.descending : key !== 'workspaceId' };
      renderList();
      document.getElementById(`sort-${key}`)?.focus();
    });
    return h('th', { scope: 'col', 'aria-sort': active ? (sort.descending ? 'descending' : 'ascending') : 'none' }, button);
  }

  async function syncNow(i: IntegrationLag) {
    const files = Object.keys(i.files) as FileType[];
    try {
      await Promise.all(files.map((t) => api('POST', `${integrationPath(i.workspaceId)}/files/${t}/sync`)));
      say(noticeBox(`Workspace ${i.workspaceId}: queued an export of ${files.join(', ')}.`, 'ok'));
    } catch (e) {
      say(errorBox(e));
    }
    await load();
  }

  function renderList() {
    const value = (i: IntegrationLag) => (sort.key === 'errors' ? errorsOf(i).length : i[sort.key]);
    const rows = [...list].sort((a, b) => (value(a) - value(b)) * (sort.descending ? -1 : 1) || a.workspaceId - b.workspaceId);
    const focused = document.activeElement?.id;
    show(
      table,
      rows.length === 0
        ? h('p', {}, 'No integrations yet.')
        : h(
            'table',
            { class: 'cards' },
            h('caption', {}, `${count(rows.length)} integrations`),
            h('thead', {}, h('tr', {}, header('Workspace', 'workspaceId'), header('Sync'), header('Destination'), header('Pending', 'pendingChanges'), header('Max lag', 'maxLagSeconds'), header('Running'), header('Errors', 'errors'), header('Action'))),
            h(
              'tbody',
              {},
              rows.map((i) => {
                const errors = errorsOf(i);
                const running = runningOf(i);
                const enabledFiles = Object.keys(i.files).length;
                return h(
                  'tr',
                  { 'data-workspace': i.workspaceId },
                  h('th', { scope: 'row', 'data-label': 'Workspace' }, h('a', { href: `#/workspaces/${i.workspaceId}` }, `Workspace ${i.workspaceId}`)),
                  h('td', { 'data-label': 'Sync' }, h('span', { class: `badge ${i.enabled ? 'ok' : 'off'}` }, i.enabled ? '✓ enabled' : '○ disabled'), ` ${i.schemaVersion}`, i.warnings.length ? h('span', { class: 'badge warn' }, ` ⚠ ${i.warnings.length} warning${i.warnings.length > 1 ? 's' : ''}`) : null),
                  h('td', { 'data-label': 'Destination' }, `${i.container}${i.blobPath ? ` / ${i.blobPath}` : ''}`),
                  h('td', { 'data-label': 'Pending', class: 'num' }, count(i.pendingChanges)),
                  h('td', { 'data-label': 'Max lag', class: 'num' }, duration(i.maxLagSeconds)),
                  h('td', { 'data-label': 'Running' }, running.length ? running.join(', ') : '–'),
                  h('td', { 'data-label': 'Errors' }, errors.length ? h('span', { class: 'badge bad' }, `✕ ${errors.join('; ')}`) : '–'),
                  h('td', { 'data-label': 'Action' }, h('button', { type: 'button', id: `sync-${i.workspaceId}`, disabled: !i.enabled || enabledFiles === 0, 'aria-label': `Sync workspace ${i.workspaceId} now`, onclick: () => void syncNow(i) }, 'Sync now')),
                );
              }),
            ),
          ),
    );
    if (focused) document.getElementById(focused)?.focus();
  }

  async function loadPoison() {
    try {
      const p = await api<{ queue: string; count: number; messages: PoisonMessage[] }>('GET', '/operations/poison');
      const replay = h('button', { type: 'button', id: 'replay', disabled: p.count === 0 }, 'Replay valid messages');
      replay.addEventListener('click', async () => {
        try {
          const r = await api<{ replayed: number; skipped: number }>('POST', '/operations/poison/replay', {});
          say(noticeBox(`Replayed ${r.replayed} message(s) to the export queue; ${r.skipped} invalid message(s) stay in the poison queue.`, 'ok'));
        } catch (e) {
          say(errorBox(e));
        }
        await load();
      });
      show(
        poison,
        h('p', {}, `${p.queue}: ${count(p.count)} message(s)${p.count > p.messages.length ? ` (showing the first ${p.messages.length})` : ''}.`),
        p.messages.length
          ? h(
              'table',
              { class: 'cards' },
              h('caption', {}, 'Messages that failed too often, decoded'),
              h('thead', {}, h('tr', {}, ['Inserted', 'Dequeues', 'Export job', 'Problem'].map((c) => h('th', { scope: 'col' }, c)))),
              h(
                'tbody',
                {},
                p.messages.map((m) =>
                  h(
                    'tr',
                    {},
                    h('td', { 'data-label': 'Inserted' }, time(m.insertedOn)),
                    h('td', { 'data-label': 'Dequeues', class: 'num' }, m.dequeueCount),
                    h('td', { 'data-label': 'Export job' }, m.job ? `workspace ${m.job.workspaceId}, ${m.job.fileType}` : h('code', {}, m.text ?? '')),
                    h('td', { 'data-label': 'Problem' }, m.job ? 'valid: can be replayed' : (m.issues ?? []).join('; ')),
                  ),
                ),
              ),
            )
          : null,
        h('div', { class: 'buttons' }, replay),
      );
    } catch (e) {
      show(poison, errorBox(e));
    }
  }

  async function load() {
    if (stopped) return;
    window.clearTimeout(timer);
    try {
      list = (await api<{ integrations: IntegrationLag[] }>('GET', '/operations/integrations')).integrations;
      renderList();
    } catch (e) {
      show(table, errorBox(e));
    }
    await loadPoison();
    if (!stopped) timer = window.setTimeout(load, REFRESH_MS);
  }

  show(
    root,
    h('h1', {}, 'Operator'),
    messages,
    h('section', { 'aria-labelledby': 'ops-title' }, h('h2', { id: 'ops-title' }, 'Integrations'), table),
    h('section', { 'aria-labelledby': 'poison-title' }, h('h2', { id: 'poison-title' }, 'Poison queue'), poison),
  );
  void load();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
