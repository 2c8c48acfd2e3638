// Calls every method of customerio-node's TrackClient against the edge at EDGE_URL (the Track API
// root, e.g. https://127.0.0.1:8443/api/v1) with SITE_ID / API_KEY, and prints one JSON line per
// call: {"call": name, "status": HTTP status, "body": parsed response}. Used by tests/edge.
'use strict';
const { TrackClient } = require('customerio-node');

const url = process.env.EDGE_URL;
const tag = process.env.TAG || 'node';
const cio = new TrackClient(process.env.SITE_ID, process.env.API_KEY, { url, retry: { maxRetries: 0 } });
const wrong = new TrackClient(process.env.SITE_ID, 'not-the-key', { url, retry: { maxRetries: 0 } });
const person = `${tag}-person`;
const ts = 1714557600;

const calls = [
  ['identify', () => cio.identify(person, { email: `${tag}@example.com`, plan: 'pro', created_at: ts })],
  ['identify_email_path', () => cio.identify(`${tag}.person@example.com`, { first_name: 'Ada' })],
  ['track', () => cio.track(person, { name: 'purchase', data: { price: 23.45 }, timestamp: ts })],
  ['trackAnonymous', () => cio.trackAnonymous(`${tag}-anon`, { name: 'visit', data: { page: '/' } })],
  ['trackPageView', () => cio.trackPageView(person, 'https://example.com/pricing')],
  ['trackPush', () => cio.trackPush({ delivery_id: `${tag}-delivery`, event: 'opened', device_id: 'tok-1', timestamp: ts })],
  ['reportMetric', () => cio.reportMetric({ delivery_id: `${tag}-delivery`, metric: 'clicked', timestamp: ts })],
  ['addDevice', () => cio.addDevice(person, `${tag}-token`, 'ios', { last_used: ts, app_version: '1.2' })],
  ['deleteDevice', () => cio.deleteDevice(person, `${tag}-token`)],
  ['suppress', () => cio.suppress(person)],
  ['unsuppress', () => cio.unsuppress(person)],
  ['mergeCustomers', () => cio.mergeCustomers('id', person, 'email', `${tag}.old@example.com`)],
  ['entity', () => cio.entity({ type: 'person', identifiers: { id: person }, action: 'event', name: 'signed_up', timestamp: ts })],
  ['batch', () => cio.batch([
    { type: 'person', identifiers: { id: person }, action: 'identify', attributes: { plan: 'team' } },
    { type: 'object', identifiers: { object_type_id: '1', object_id: `${tag}-acme` }, action: 'identify', attributes: { name: 'Acme' } },
  ])],
  ['addCustomersToSegment', () => cio.addCustomersToSegment(7, [person], 'id')],
  ['removeCustomersFromSegment', () => cio.removeCustomersFromSegment(7, [person])],
  ['submitForm', () => cio.submitForm('signup', { email: `${tag}@example.com` })],
  ['getAccountRegion', () => cio.getAccountRegion()],
  ['unsubscribe', () => cio.unsubscribe(`${tag}-delivery`)],
  ['destroy', () => cio.destroy(person)],
  ['identify_wrong_key', () => wrong.identify(person, { plan: 'free' })],
];

(async () => {
  for (const [call, run] of calls) {
    try {
      const body = await run();
      console.log(JSON.stringify({ call, status: 200, body }));
    } catch (error) {
      if (error && error.statusCode) {
        console.log(JSON.stringify({ call, status: error.statusCode, body: error.body ?? null }));
      } else {
        console.log(JSON.stringify({ call, status: null, error: String(error && (error.cause || error)) }));
      }
    }
  }
})();
