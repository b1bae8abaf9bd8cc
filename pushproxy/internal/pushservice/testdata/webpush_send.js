// Sends one Web Push message with npm web-push, an independent RFC 8291 /
// RFC 8292 implementation: generateRequestDetails encrypts and signs, fetch
// POSTs. Reads {subscription, payload (base64), vapid, ttl, urgency, topic}
// as JSON on stdin; prints {status, location, ttl, body (base64 of the
// exact bytes POSTed)} as JSON on stdout. Run with NODE_PATH pointing at
// test/node/node_modules.
'use strict';

const webpush = require('web-push');

async function main() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const details = webpush.generateRequestDetails(
    input.subscription,
    Buffer.from(input.payload, 'base64'),
    {
      vapidDetails: input.vapid,
      TTL: input.ttl,
      urgency: input.urgency,
      topic: input.topic,
      contentEncoding: 'aes128gcm',
    });
  const resp = await fetch(details.endpoint, {
    method: details.method,
    headers: details.headers,
    body: details.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(10000),
  });
  await resp.arrayBuffer();
  process.stdout.write(JSON.stringify({
    status: resp.status,
    location: resp.headers.get('location'),
    ttl: resp.headers.get('ttl'),
    body: Buffer.from(details.body).toString('base64'),
  }));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
