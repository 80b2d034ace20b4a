// gmailoauth demo: the events to the app, as they come.
//
// Every change the functions make to a user's mirror or grant is an event on
// the app's Pub/Sub topic (docs/integrating.md). A real app reads its
// subscription on its server, never in the browser. The local runner keeps a
// copy of the events at GET /dev/events (a JSON array, oldest first), which
// this page polls to show them and to list the first page again when new
// mail arrives: no reload.
//
// Delivery is at least once, so the page does what an app does: it drops an
// event whose event_id it has seen already.
'use strict';

(() => {
  const API = window.GMAILOAUTH.apiBase;
  const POLL_MS = 1000;
  const SHOWN = 30;          // events kept on screen, newest first
  const seen = new Set();    // event_ids handled: duplicates are dropped
  const loadedAt = Date.now();
  let firstPoll = true;

  // The signed-in user's id: the session is a JWT whose payload's sub is
  // the user_id the events carry (read here only to filter; the functions
  // verify sessions, the page does not).
  function me() {
    const s = sessionStorage.getItem('gmailoauth.session');
    if (!s) return '';
    try {
      const payload = s.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload)).sub || '';
    } catch (e) {
      return '';
    }
  }

  function describe(e) {
    const m = e.message || {};
    switch (e.type) {
      case 'message.added': return (m.subject || '(no subject)') + (m.from ? ' — ' + m.from : '');
      case 'message.deleted': return 'message ' + m.id;
      case 'message.labels_changed': return 'message ' + m.id + ': ' + (m.label_ids || []).join(', ');
      case 'grant.connected': return e.email;
      case 'grant.revoked': return (e.grant && e.grant.reason) || '';
      case 'sync.failed': return (e.error && e.error.message) || '';
      default: return e.email || '';
    }
  }

  function show(e) {
    const li = document.createElement('li');
    li.dataset.type = e.type;
    li.dataset.eventId = e.event_id;
    const when = document.createElement('span');
    when.className = 'when';
    when.textContent = new Date(e.occurred_at).toLocaleTimeString();
    const type = document.createElement('code');
    type.className = 'type';
    type.textContent = e.type;
    const what = document.createElement('span');
    what.className = 'what';
    what.textContent = describe(e);
    li.append(when, type, what);
    const list = document.getElementById('event-list');
    list.prepend(li);
    while (list.children.length > SHOWN) list.lastChild.remove();
  }

  // newMail reports whether e should make the first page list again: a
  // message that arrived after the page loaded (not one of the first sync's
  // older messages), or a change to a message on screen.
  function newMail(e) {
    const m = e.message;
    if (!m) return false;
    const onScreen = !!document.querySelector('#messages li[data-id="' + CSS.escape(m.id) + '"]');
    if (e.type === 'message.added') return !onScreen && (m.internal_date || 0) >= loadedAt - 1000;
    return onScreen;
  }

  async function poll() {
    const user = me();
    const section = document.getElementById('events');
    section.hidden = !user;
    if (user) {
      try {
        const resp = await fetch(API + '/dev/events', { mode: 'cors', credentials: 'omit', cache: 'no-store' });
        const all = resp.ok ? await resp.json() : [];
        let changed = false;
        for (const e of all) {
          if (e.user_id !== user || seen.has(e.event_id)) continue;
          seen.add(e.event_id);
          show(e);
          if (!firstPoll && newMail(e)) changed = true;
        }
        firstPoll = false;
        document.getElementById('events-empty').hidden = document.getElementById('event-list').children.length > 0;
        if (changed) window.dispatchEvent(new CustomEvent('gmailoauth:new-mail'));
      } catch (e) {
        // The runner is not reachable (or not the local one): try again.
      }
    }
    setTimeout(poll, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', poll);
})();
