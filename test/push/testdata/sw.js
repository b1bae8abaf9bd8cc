"use strict";
// The fixture's service worker: on a push it reads the id-only payload,
// fetches the message over the authenticated API the way a Mattermost
// client does (POST /api/v4/notifications/ack), shows a notification and
// reports what it got to the test.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));

const report = (kind, data) => fetch('/report', {method: 'POST', body: JSON.stringify({kind, data})});

self.addEventListener('push', e => {
  e.waitUntil((async () => {
    let payload = null;
    let text = '';
    try {
      text = e.data ? e.data.text() : '';
      payload = JSON.parse(text);
    } catch (err) {
      await report('push', {raw: text, error: String(err)});
      return;
    }
    let ack = null;
    if (payload.type === 'message' && payload.post_id) {
      const cached = await (await caches.open('garrison-fixture')).match('/token');
      const token = cached ? await cached.text() : '';
      const r = await fetch('/api/v4/notifications/ack', {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token, 'X-Requested-With': 'XMLHttpRequest'},
        body: JSON.stringify({
          id: payload.ack_id, received_at: Date.now(), platform: 'webpush',
          type: payload.type, post_id: payload.post_id, is_id_loaded: !!payload.id_loaded,
        }),
      });
      ack = {status: r.status, body: await r.json().catch(() => null)};
    }
    await report('push', {payload, ack});
    const title = ack && ack.body && ack.body.channel_name || 'Garrison';
    const body = ack && ack.body && ack.body.message || 'You have a new message.';
    // Headless Firefox needs alerts.useSystemBackend=false for this; a
    // failure here must not hide the report above.
    await self.registration.showNotification(title, {body, tag: payload.channel_id || 'garrison'}).catch(err => report('notification_error', {message: String(err)}));
  })());
});
