// Inline SVG charts drawn here (no library): rows per sync as bars, lag as dots over time. Each has
// a text summary for screen readers; the history table below them holds the same numbers.
import { s } from './dom.js';

export interface Point {
  at: number;
  value: number;
  label: string;
}

const W = 640;
const H = 180;
const PAD = { left: 56, right: 20, top: 12, bottom: 28 };

function axisLabel(v: number, unit: string): string {
  if (unit === 's') return v >= 3600 ? `${(v / 3600).toFixed(1)}h` : v >= 60 ? `${Math.round(v / 60)}m` : `${Math.round(v)}s`;
  return v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : String(Math.round(v));
}

const day = (ms: number) => new Date(ms).toISOString().slice(5, 10);

/** A time chart of `points` from `from` to `to`: bars (counts) or dots joined by a line (lag). */
export function timeChart(title: string, points: Point[], options: { from: number; to: number; kind: 'bars' | 'line'; unit: string }): SVGSVGElement {
  const { from, to, kind, unit } = options;
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (t: number) => PAD.left + ((t - from) / Math.max(1, to - from)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const summary = points.length ? `${title}: ${points.length} points, highest ${axisLabel(max, unit)}` : `${title}: nothing in this period`;
  const ticks = [0, 0.5, 1].map((f) => max * f);
  const days: number[] = [];
  for (let t = Math.ceil(from / 86_400_000) * 86_400_000; t <= to; t += 86_400_000) days.push(t);
  const dayStep = Math.max(1, Math.ceil(days.length / 8));
  const bar = Math.max(2, Math.min(14, (W - PAD.left - PAD.right) / Math.max(points.length, 1) / 2));
  const sorted = [...points].sort((a, b) => a.at - b.at);
  return s(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, class: 'chart', preserveAspectRatio: 'xMidYMid meet' },
    s('title', {}, summary),
    ticks.map((v) => [
      s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, axisLabel(v, unit)),
    ]),
    days.filter((_, i) => i % dayStep === 0).map((t) => s('text', { x: x(t), y: H - 8, 'text-anchor': 'middle', class: 'tick' }, day(t))),
    s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: 'axis' }),
    kind === 'bars'
      ? sorted.map((p) => s('rect', { x: x(p.at) - bar / 2, y: y(p.value), width: bar, height: Math.max(1, y(0) - y(p.value)), class: 'bar' }, s('title', {}, p.label)))
      : [
          sorted.length > 1 ? s('polyline', { points: sorted.map((p) => `${x(p.at)},${y(p.value)}`).join(' '), class: 'line' }) : null,
          sorted.map((p) => s('circle', { cx: x(p.at), cy: y(p.value), r: 3.5, class: 'dot' }, s('title', {}, p.label))),
        ],
  );
}
