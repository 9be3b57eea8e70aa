// Export history of a workspace: files written per type over time (rows, bytes, kind, lag) and
// failed attempts, with charts of rows per sync and lag over the last days.
import { api, FILE_TYPES, integrationPath, type HistoryItem, type HistoryPage } from './api.js';
import { field, h, show } from './dom.js';
import { errorBox } from './errors.js';
import { bytes, count, duration, time } from './format.js';
import { timeChart } from './chart.js';

const CHART_DAYS = 7;
const PAGE = 200;

export function historySection(workspaceId: number): { element: HTMLElement; refresh(): Promise<void> } {
  const filter = h('select', { name: 'fileType' }, h('option', { value: '' }, 'All files'), FILE_TYPES.map((t) => h('option', { value: t }, t)));
  const charts = h('div', { class: 'charts' });
  const body = h('div', { class: 'history-table' });
  const more = h('button', { type: 'button', hidden: true }, 'Show older');
  let entries: HistoryItem[] = [];
  let next: string | null = null;

  const query = (before?: string) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (filter.value) q.set('fileType', filter.value);
    if (before) q.set('before', before);
    return `${integrationPath(workspaceId)}/exports?${q}`;
  };

  function render() {
    const to = Date.now();
    const from = to - CHART_DAYS * 86_400_000;
    const written = entries.filter((e): e is Extract<HistoryItem, { outcome: 'written' }> => e.outcome === 'written' && Date.parse(e.at) >= from);
    show(
      charts,
      h('figure', {}, h('figcaption', {}, `Rows per file, last ${CHART_DAYS} days`), timeChart('Rows per file', written.map((e) => ({ at: Date.parse(e.at), value: e.rows, label: `${e.name}: ${count(e.rows)} rows, ${time(e.at)}` })), { from, to, kind: 'bars', unit: 'rows' })),
      h(
        'figure',
        {},
        h('figcaption', {}, `Lag of the oldest change in each file, last ${CHART_DAYS} days`),
        timeChart('Lag', written.filter((e) => e.lagSeconds !== null).map((e) => ({ at: Date.parse(e.at), value: e.lagSeconds!, label: `${e.name}: lag ${duration(e.lagSeconds)}, ${time(e.at)}` })), { from, to, kind: 'line', unit: 's' }),
      ),
    );
    if (entries.length === 0) {
      show(body, h('p', {}, 'No exports yet. The first file appears here when it is committed.'));
    } else {
      const rows = entries.map((e) =>
        e.outcome === 'failed'
          ? h('tr', { class: 'failed' }, h('td', { 'data-label': 'Time' }, time(e.at)), h('td', { 'data-label': 'File' }, e.fileType), h('td', { 'data-label': 'Kind' }, h('span', { class: 'badge bad' }, '✕ failed')), h('td', { 'data-label': 'Sequence' }, '–'), h('td', { 'data-label': 'Rows' }, '–'), h('td', { 'data-label': 'Bytes' }, '–'), h('td', { 'data-label': 'Lag' }, '–'), h('td', { 'data-label': 'File name or error' }, h('code', {}, e.error.code), ' ', e.error.message))
          : h(
              'tr',
              {},
              h('td', { 'data-label': 'Time' }, time(e.committedAt)),
              h('td', { 'data-label': 'File' }, e.fileType),
              h('td', { 'data-label': 'Kind' }, e.kind),
              h('td', { 'data-label': 'Sequence', class: 'num' }, e.part !== undefined ? `${e.sequence}.${e.part}` : e.sequence),
              h('td', { 'data-label': 'Rows', class: 'num' }, count(e.rows)),
              h('td', { 'data-label': 'Bytes', class: 'num' }, bytes(e.bytes)),
              h('td', { 'data-label': 'Lag', class: 'num' }, duration(e.lagSeconds)),
              h('td', { 'data-label': 'File name or error' }, h('code', {}, e.name)),
            ),
      );
      show(
        body,
        h(
          'table',
          { class: 'cards' },
          h('caption', {}, `${count(entries.length)} entries, newest first`),
          h('thead', {}, h('tr', {}, ['Committed', 'File', 'Kind', 'Sequence', 'Rows', 'Bytes', 'Lag', 'File name or error'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows),
        ),
      );
    }
    more.hidden = !next;
  }

  async function refresh() {
    try {
      const page = await api<HistoryPage>('GET', query());
      entries = page.entries;
      next = page.next;
      render();
    } catch (e) {
      show(body, errorBox(e));
    }
  }
  filter.addEventListener('change', () => void refresh());
  more.addEventListener('click', async () => {
    if (!next) return;
    try {
      const page = await api<HistoryPage>('GET', query(next));
      entries = [...entries, ...page.entries];
      next = page.next;
      render();
    } catch (e) {
      show(body, errorBox(e));
    }
  });
  const element = h('section', { class: 'history', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Export history'), h('div', { class: 'toolbar' }, field('Show', filter)), charts, body, more);
  return { element, refresh };
}
