// Synthetic, realistic data for a demo workspace, sent through the ingest API (dev tool only).
// Deterministic for a given seed and `now`, so two fresh demos look alike.

/** Ingest route tokens (SPEC section 6), in the order the demo sends them. */
export const INGEST_ORDER = ['people', 'events', 'subjects', 'outputs', 'deliveries', 'metrics', 'delivery_contents'] as const;
export type IngestName = (typeof INGEST_ORDER)[number] | 'attributes';

export type DemoRecord = Record<string, unknown>;
export type DemoData = Record<(typeof INGEST_ORDER)[number], DemoRecord[]>;

export interface DemoOptions {
  /** Number of people (default 300). */
  people?: number;
  seed?: number;
  now?: Date;
}

const DAY = 86_400_000;
const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Linus', 'Radia', 'Tim', 'Hedy', 'Dennis', 'Sophie', 'Guido'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Torvalds', 'Perlman', 'Berners-Lee', 'Lamarr', 'Ritchie', 'Wilson', 'van Rossum'];
const CITIES = ['Berlin', 'Lisbon', 'Toronto', 'Austin', 'Nairobi', 'Osaka', 'Melbourne', 'Dublin', 'São Paulo', 'Zürich'];
const PLANS = ['free', 'starter', 'pro', 'enterprise'];
const EVENT_NAMES = ['signed_up', 'logged_in', 'viewed_product', 'added_to_cart', 'purchased', 'cancelled_subscription'];
const PAGES = ['/', '/pricing', '/docs/getting-started', '/blog/launch', '/account/billing'];
const SCREENS = ['Home', 'Settings', 'Cart', 'Checkout'];
const CAMPAIGNS = [
  { id: 101, type: 'behavioral', trigger: 'signed_up', name: 'Welcome series' },
  { id: 102, type: 'behavioral', trigger: 'added_to_cart', name: 'Abandoned cart' },
  { id: 103, type: 'segment', trigger: null, name: 'Win-back' },
  { id: 104, type: 'api_triggered_broadcast', trigger: null, name: 'Product launch' },
] as const;
const LINKS = ['https://example.com/pricing', 'https://example.com/docs', 'https://example.com/cart', 'https://example.com/unsubscribe'];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateDemoData(options: DemoOptions = {}): DemoData {
  const rand = mulberry32(options.seed ?? 20240601);
  const now = (options.now ?? new Date()).getTime();
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const chance = (p: number) => rand() < p;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const iso = (ms: number) => new Date(Math.min(ms, now)).toISOString();

  const data: DemoData = { people: [], events: [], subjects: [], outputs: [], deliveries: [], metrics: [], delivery_contents: [] };
  const peopleCount = options.people ?? 300;

  for (let i = 1; i <= peopleCount; i++) {
    const cio = `cio_${hex(12)}`;
    const first = pick(FIRST_NAMES);
    const last = pick(LAST_NAMES);
    const email = `${first}.${last}.${i}@example.com`.toLowerCase().replace(/[^a-z0-9.@-]/g, '');
    const createdAt = now - int(1, 180) * DAY - int(0, DAY);
    const deleted = chance(0.05);
    const suppressed = !deleted && chance(0.03);
    const attributes: Record<string, string | number | boolean | null> = {
      first_name: first,
      last_name: last,
      plan: pick(PLANS),
      city: pick(CITIES),
      age: int(18, 75),
      vip: chance(0.1),
    };
    if (chance(0.3)) attributes.company = `${pick(LAST_NAMES)} & Co`;
    data.people.push({
      internal_customer_id: cio,
      customer_id: `user-${String(i).padStart(5, '0')}`,
      email_addr: chance(0.95) ? email : null,
      deleted,
      suppressed,
      created_at: iso(createdAt),
      updated_at: iso(createdAt + int(0, Math.max(0, Math.floor((now - createdAt) / 1000))) * 1000),
      attributes,
    });

    // Events over the past 60 days (some older than the 30-day initial-sync window).
    const personEvents: { id: string; name: string; at: number }[] = [];
    for (let e = int(2, 8); e > 0; e--) {
      const at = now - int(0, 60 * DAY);
      const type = pick(['event', 'event', 'event', 'page', 'screen'] as const);
      const name = type === 'page' ? pick(PAGES) : type === 'screen' ? pick(SCREENS) : pick(EVENT_NAMES);
      const id = `evt_${hex(16)}`;
      const payload =
        type === 'event'
          ? { source: pick(['web', 'ios', 'android']), value: name === 'purchased' ? int(5, 500) : undefined, currency: name === 'purchased' ? 'EUR' : undefined }
          : { referrer: pick(['google', 'newsletter', 'direct']), duration_ms: int(200, 90_000) };
      data.events.push({ event_id: id, internal_customer_id: cio, name, type, data: JSON.stringify(payload), timestamp: iso(at) });
      personEvents.push({ id, name, at });
    }

    // Journeys: each person enters one or two campaigns.
    for (const campaign of [...CAMPAIGNS].sort(() => rand() - 0.5).slice(0, int(1, 2))) {
      const triggerEvent = campaign.trigger ? personEvents.find((e) => e.name === campaign.trigger) : undefined;
      const started = triggerEvent?.at ?? Math.max(createdAt, now - int(1, 90) * DAY);
      const subject = `subj_${hex(16)}`;
      data.subjects.push({
        subject_name: subject,
        internal_customer_id: cio,
        campaign_type: campaign.type,
        campaign_id: campaign.id,
        event_id: triggerEvent?.id ?? null,
        trigger_id: campaign.type === 'api_triggered_broadcast' ? 7 : null,
        started_campaign_at: iso(started),
        created_at: iso(started),
      });
      let at = started;
      for (let step = 0; step < int(1, 3); step++) {
        const actionId = campaign.id * 10 + step;
        at += int(1, 48) * 3_600_000;
        if (at > now) break;
        if (step > 0 && chance(0.3)) {
          data.outputs.push({
            output_id: `out_${hex(16)}`,
            subject_name: subject,
            output_type: 'delay',
            action_id: actionId,
            explanation: 'Waited before the next message',
            delay_ends_at: iso(at),
            created_at: iso(at - 3_600_000),
          });
          continue;
        }
        const deliveryType = pick(['email', 'email', 'email', 'push', 'sms', 'in-app', 'webhook'] as const);
        const deliveryId = `dlv_${hex(16)}`;
        data.outputs.push({
          output_id: `out_${hex(16)}`,
          subject_name: subject,
          output_type: deliveryType === 'webhook' ? 'webhook' : 'message',
          action_id: actionId,
          explanation: `Sent ${deliveryType} "${campaign.name}" step ${step + 1}`,
          delivery_id: deliveryId,
          draft: false,
          link_tracked: deliveryType === 'email',
          split_test_index: chance(0.2) ? int(0, 1) : null,
          created_at: iso(at),
        });
        addDelivery({ deliveryId, deliveryType, cio, email, first, at, campaignId: campaign.id, actionId, subject, eventId: triggerEvent?.id ?? null, campaignName: campaign.name, deleted });
      }
    }

    // Newsletters and transactional messages outside journeys.
    if (chance(0.4)) {
      addDelivery({ deliveryId: `dlv_${hex(16)}`, deliveryType: 'email', cio, email, first, at: now - int(0, 45) * DAY, newsletterId: 9, contentId: int(1, 2), campaignName: 'Monthly newsletter', deleted });
    }
    if (chance(0.2)) {
      addDelivery({ deliveryId: `dlv_${hex(16)}`, deliveryType: 'email', cio, email, first, at: now - int(0, 20) * DAY, transactionalId: 3, campaignName: 'Password reset', deleted });
    }
  }

  // One large HTML email (~300 KiB) that must round-trip byte for byte.
  const big = data.delivery_contents.find((c) => c.type === 'email');
  if (big) big.body = htmlBody('Your annual report', 'there', 1800);

  return data;

  function addDelivery(d: {
    deliveryId: string;
    deliveryType: 'email' | 'push' | 'sms' | 'in-app' | 'webhook';
    cio: string;
    email: string;
    first: string;
    at: number;
    campaignId?: number;
    actionId?: number;
    subject?: string;
    eventId?: string | null;
    newsletterId?: number;
    contentId?: number;
    transactionalId?: number;
    campaignName: string;
    deleted: boolean;
  }): void {
    data.deliveries.push({
      delivery_id: d.deliveryId,
      internal_customer_id: d.cio,
      subject_id: d.subject ?? null,
      event_id: d.eventId ?? null,
      delivery_type: d.deliveryType,
      campaign_id: d.campaignId ?? null,
      action_id: d.actionId ?? null,
      newsletter_id: d.newsletterId ?? null,
      content_id: d.contentId ?? null,
      trigger_id: null,
      created_at: iso(d.at),
      transactional_message_id: d.transactionalId ?? null,
    });
    // Metrics: sent → delivered → opened → clicked, or a bounce.
    const metric = (name: string, offsetMs: number, extra: DemoRecord = {}) =>
      data.metrics.push({ event_id: `met_${hex(16)}`, delivery_id: d.deliveryId, metric: name, created_at: iso(d.at + offsetMs), ...extra });
    metric('sent', 1000);
    if (d.deliveryType === 'email' && chance(0.04)) {
      metric('bounced', 60_000, { reason: pick(['mailbox full', 'no such user', 'blocked by recipient server']) });
    } else if (d.deleted && chance(0.5)) {
      metric('dropped', 2000, { reason: 'person deleted' });
    } else {
      metric('delivered', 30_000);
      if (d.deliveryType !== 'webhook' && chance(0.55)) {
        metric('opened', int(5, 600) * 60_000);
        if (chance(0.35)) {
          const linkId = int(1, LINKS.length);
          metric('clicked', int(601, 1200) * 60_000, { link_id: linkId, link_url: LINKS[linkId - 1] });
          if (chance(0.15)) metric('converted', int(1201, 3000) * 60_000);
        }
        if (chance(0.02)) metric('unsubscribed', int(1201, 3000) * 60_000);
      }
    }
    // Rendered content.
    const subjectLine = `${d.campaignName}: ${pick(['a quick hello', 'something you left behind', 'we miss you', "what's new", 'your account'])}`;
    const common = {
      delivery_id: d.deliveryId,
      campaign_id: d.campaignId ?? null,
      action_id: d.actionId ?? null,
      newsletter_id: d.newsletterId ?? null,
      content_id: d.contentId ?? null,
      type: d.deliveryType,
    };
    if (d.deliveryType === 'email') {
      data.delivery_contents.push({
        ...common,
        from: 'Acme <hello@acme.example>',
        reply_to: 'support@acme.example',
        bcc: null,
        recipient: d.email,
        subject: subjectLine,
        body: htmlBody(subjectLine, d.first, int(3, 12)),
        body_amp: null,
        body_plain: `Hi ${d.first},\n\n${subjectLine}\n\nhttps://example.com/docs\n\nAcme`,
        preheader: 'A short preview of this email',
      });
    } else if (d.deliveryType === 'webhook') {
      data.delivery_contents.push({
        ...common,
        url: 'https://hooks.example.com/acme/events',
        method: 'POST',
        headers: JSON.stringify({ 'content-type': 'application/json', 'x-acme-signature': hex(32) }),
        body: JSON.stringify({ customer: d.cio, campaign: d.campaignName }),
      });
    } else {
      data.delivery_contents.push({ ...common, recipient: d.deliveryType === 'sms' ? `+1555${String(int(0, 9_999_999)).padStart(7, '0')}` : d.cio, body: `${d.first}, ${subjectLine}` });
    }
  }

  function htmlBody(title: string, name: string, paragraphs: number): string {
    const para = (i: number) =>
      `    <tr><td style="padding:12px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#333">` +
      `Paragraph ${i + 1}: thanks for being with us — here is what changed this week, with <a href="${pick(LINKS)}?utm_source=email&amp;utm_campaign=demo">a link</a> and some “smart quotes”, émojis 🎉 and non-ASCII text (Grüße, 日本語).</td></tr>\n`;
    return (
      `<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>${title}</title></head>\n` +
      `<body style="margin:0;background:#f4f4f7">\n  <table role="presentation" width="100%" cellpadding="0" cellspacing="0">\n` +
      `    <tr><td style="padding:24px"><h1 style="font-family:Helvetica,Arial,sans-serif">Hi ${name},</h1></td></tr>\n` +
      Array.from({ length: paragraphs }, (_, i) => para(i)).join('') +
      `  </table>\n</body>\n</html>\n`
    );
  }
}

export interface IngestResult {
  name: string;
  records: number;
  requests: number;
}

/**
 * Sends the demo data through `POST {apiBase}/workspaces/{id}/ingest/{name}` in batches of at most
 * `batchSize` records, in INGEST_ORDER. Throws with the response body on any non-2xx answer.
 */
export async function ingestDemoData(apiBase: string, workspaceId: number, data: DemoData, batchSize = 1000): Promise<IngestResult[]> {
  const results: IngestResult[] = [];
  for (const name of INGEST_ORDER) {
    const records = data[name];
    let requests = 0;
    for (let i = 0; i < records.length; i += batchSize) {
      const batch = records.slice(i, i + batchSize);
      const res = await fetch(`${apiBase}/workspaces/${workspaceId}/ingest/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch),
      });
      if (!res.ok) {
        throw new Error(`demo: ingest/${name} (records ${i}-${i + batch.length - 1}) answered ${res.status}: ${(await res.text()).slice(0, 2000)}`);
      }
      requests++;
    }
    results.push({ name, records: records.length, requests });
  }
  return results;
}
