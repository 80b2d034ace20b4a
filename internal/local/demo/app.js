// gmailoauth demo frontend: everything a web app does to use the three
// functions, in one file with no build step. Read it top to bottom:
//
//   1. connect()        POST /authorize, then navigate to Google's consent page
//   2. handleReturn()   the callback sends the browser back here with the
//                       session (or an error) in the URL fragment
//   3. list()           GET /list-messages with Authorization: Bearer <session>;
//                       the answer says whether it came from the mirror (and
//                       when that was synced) or from Gmail
//   4. disconnect()     DELETE /authorize
//
// The page runs on its own origin and calls the functions cross-origin, as a
// deployed frontend does; the functions answer CORS for the origins listed in
// ALLOWED_RETURN_ORIGINS. Data is rendered with textContent only, never
// innerHTML, so a message subject cannot inject markup.
'use strict';

const API = window.GMAILOAUTH.apiBase; // e.g. http://localhost:8080 (config.js)
const PAGE_SIZE = 10;

// Where the session lives. sessionStorage: per tab, survives a reload and the
// round trip through the consent page, gone when the tab closes. Any script on
// this origin can read it (so can it read memory): keep the page free of XSS,
// which is why nothing here uses innerHTML. Not localStorage (outlives the tab,
// shared by every tab and left on the disk) and not a cookie (the browser would
// attach it to requests on its own, bringing CSRF with it; the functions
// expect the session in the Authorization header and never read cookies).
// A stricter app keeps it in memory only and reconnects after a reload.
const store = {
  get: (k) => sessionStorage.getItem('gmailoauth.' + k),
  set: (k, v) => sessionStorage.setItem('gmailoauth.' + k, v),
  del: (...ks) => ks.forEach((k) => sessionStorage.removeItem('gmailoauth.' + k)),
};

const $ = (id) => document.getElementById(id);
const view = { q: '', tokens: [''], page: 0 }; // tokens[i]: page_token of page i
let working = false; // a call is under way: every button waits for it

// ---- calling the functions -------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, authorizationURL, retryAfter) {
    super(message);
    Object.assign(this, { status, code, authorizationURL, retryAfter });
  }
}

// api calls a function and returns its JSON (null for 204). Errors come back
// as {"error": {"code", "message", "authorization_url"?}} and become ApiError.
async function api(method, path, { body, session } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (session) headers.Authorization = 'Bearer ' + session;
  let resp;
  try {
    resp = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      mode: 'cors', credentials: 'omit', cache: 'no-store',
    });
  } catch (e) {
    // fetch rejects on network errors and on a refused CORS check alike; the
    // page cannot tell which (the runner logs a refused origin).
    throw new ApiError(0, 'network_error', e.message);
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || 'http_' + resp.status, e.message || resp.statusText,
      e.authorization_url, resp.headers.get('Retry-After')); // Retry-After is exposed by CORS
  }
  return data;
}

// ---- 1. connect --------------------------------------------------------------

function randomState() {
  const b = new Uint8Array(32); // 256 bits
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function connect(loginHint) {
  if (working) return; // one authorization at a time
  busy(true, 'Opening Google’s consent page…');
  // Our own state, kept in this tab: the answer that comes back must carry it,
  // or the page ignores it (someone else's link cannot sign this tab in).
  const state = randomState();
  store.set('pending', JSON.stringify({ state, loginHint }));
  const body = { return_to: location.origin + location.pathname, state };
  if (loginHint) body.login_hint = loginHint; // the consent page preselects this account
  try {
    const res = await api('POST', '/authorize', { body });
    location.assign(res.authorization_url); // Google's consent page; it comes back to /callback, then here
    // Still busy: the page is leaving.
  } catch (e) {
    store.del('pending');
    busy(false);
    showError(e);
  }
}

// ---- 2. coming back from the callback --------------------------------------

// The callback redirects to return_to with a fragment, which browsers never
// send to servers or in Referer headers:
//   #session=…&session_expires_at=…&state=…                       on success
//   #error=…&error_description=…&state=…&authorization_url=…      on failure
function handleReturn() {
  const f = new URLSearchParams(location.hash.slice(1));
  if (!f.has('session') && !f.has('error')) return;
  // Clear the fragment at once: no session in the address bar, history or bookmarks.
  history.replaceState(null, '', location.pathname + location.search);
  const pending = JSON.parse(store.get('pending') || 'null');
  store.del('pending');
  if (!pending || f.get('state') !== pending.state) {
    notice('This page ignored a sign-in answer it did not ask for. Connect again from here.', 'error', { code: 'state_mismatch' });
    return;
  }
  if (f.has('error')) {
    const e = new ApiError(0, f.get('error'), f.get('error_description') || '', f.get('authorization_url'));
    notice(explain(e, 'connect'), 'error', e);
    return;
  }
  store.set('session', f.get('session'));
  store.set('expires', f.get('session_expires_at') || '');
  store.set('who', pending.loginHint || '');
}

function session() {
  const s = store.get('session');
  const exp = Date.parse(store.get('expires') || '');
  if (s && !(exp <= Date.now())) return s;
  if (s) { store.del('session', 'expires'); notice('Your session expired; connect again.', 'info'); }
  return null;
}

// ---- 3. listing --------------------------------------------------------------

async function list() {
  if (working) return;
  const s = session();
  if (!s) return render();
  const p = new URLSearchParams({ format: 'metadata', max_results: String(PAGE_SIZE) });
  if (view.q) p.set('q', view.q);
  if (view.tokens[view.page]) p.set('page_token', view.tokens[view.page]);
  busy(true, view.q ? `Searching for “${view.q}”…` : 'Loading messages…');
  try {
    const res = await api('GET', '/list-messages?' + p, { session: s });
    view.tokens[view.page + 1] = res.next_page_token || '';
    notice('');
    renderMessages(res);
  } catch (e) {
    clearMessages(); // what is listed no longer answers the search
    showError(e);
  } finally {
    busy(false);
  }
}

function clearMessages() {
  $('messages').replaceChildren();
  $('results').hidden = true;
}

function renderMessages(res) {
  const items = (res.messages || []).map((m) => {
    const li = document.createElement('li');
    if ((m.label_ids || []).includes('UNREAD')) li.className = 'unread';
    li.dataset.id = m.id;
    const from = part('from', senderName(m.from));
    from.title = m.from || '';
    const when = new Date(m.date);
    const date = part('date', isNaN(when) ? m.date : when.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
    li.append(from, date, part('subject', m.subject || '(no subject)'), part('snippet', m.snippet || ''));
    return li;
  });
  $('messages').replaceChildren(...items);
  $('messages').dataset.page = String(view.page + 1);
  $('messages').hidden = items.length === 0;
  const about = view.q ? ` matching “${view.q}”` : '';
  $('empty').textContent = `No messages${about}.`;
  $('empty').hidden = items.length > 0;
  $('summary').textContent = items.length ? `About ${res.result_size_estimate} messages${about}` : '';
  showSource(res);
  $('page').textContent = 'Page ' + (view.page + 1);
  enable('prev', view.page > 0);
  enable('next', !!res.next_page_token);
  $('results').hidden = false;
  $('reauth').hidden = true;
  setState('listed');
}

// showSource says where the page came from: the mirror (the copy the sync
// keeps; no Gmail quota spent) with how fresh it is, or Gmail itself.
function showSource(res) {
  const el = $('source');
  el.dataset.source = res.source || '';
  if (res.source !== 'mirror') {
    el.textContent = 'Live from Gmail';
    return;
  }
  const s = Math.max(0, Math.round((Date.now() - Date.parse(res.synced_at)) / 1000));
  const ago = isNaN(s) ? 'at an unknown time'
    : s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago`
      : s < 86400 ? `${Math.floor(s / 3600)} h ago` : new Date(res.synced_at).toLocaleString();
  el.textContent = `From the mirror, synced ${ago}`;
}

// senderName turns 'Alice Martin <alice@example.com>' into 'Alice Martin'.
function senderName(from) {
  const m = /^\s*"?([^"<]*?)"?\s*<[^>]*>\s*$/.exec(from || '');
  return (m && m[1]) || from || '';
}

// part is one line of a message in the list; textContent only, never HTML.
function part(kind, text) {
  const el = document.createElement('div');
  el.className = kind;
  el.textContent = text || '';
  return el;
}

// ---- 4. disconnect -------------------------------------------------------------

async function disconnect() {
  if (working) return;
  const s = store.get('session');
  busy(true, 'Disconnecting…');
  let res = null;
  try {
    // Revokes the grant at Google and deletes the stored refresh token: 204.
    // 200 {revoked_at_google: false, message}: deleted, but not revoked.
    if (s) res = await api('DELETE', '/authorize', { session: s });
  } catch (e) {
    if (e.code !== 'invalid_session' && e.code !== 'missing_session') { busy(false); showError(e); return; }
  }
  store.del('session', 'expires', 'who');
  busy(false);
  clearMessages();
  notice(res && res.message ? res.message : 'Disconnected: the grant was revoked and the stored token deleted.', 'info');
  render();
}

// ---- errors and screen state ---------------------------------------------------

// explain says in plain words what a failed call means for the user; the
// code and the functions' own message go in the small print (notice).
// `during` is 'connect' for an answer of the callback, else ''.
function explain(e, during) {
  const wait = e.retryAfter ? `in ${e.retryAfter} seconds` : 'in a moment';
  switch (e.code) {
    case 'network_error':
      return `The service at ${API} could not be reached. Check that it is running (make dev), ` +
        'and that this page’s address is one it allows: it logs a refused origin.';
    case 'misconfigured':
      return 'The service is not set up correctly, so it cannot answer yet. Its log says what to fix.';
    case 'internal':
      return 'Something went wrong inside the service. Try again; if it keeps failing, its log has the details.';
    case 'unavailable':
      return `The service’s storage did not answer. Try again ${wait}.`;
    case 'upstream_unavailable':
      return during === 'connect' ? 'Google did not answer while connecting. Connect again.' : `Google did not answer. Try again ${wait}.`;
    case 'upstream_error':
      return 'Google refused the request.';
    case 'rate_limited':
      return `Gmail is busy for this account. Try again ${wait}.`;
    case 'access_denied':
      return 'You declined access, so nothing was connected.';
    case 'invalid_state': case 'expired_state':
      return 'That sign-in took too long or was already used. Connect again.';
    case 'no_refresh_token':
      return 'Google did not grant offline access. Connect again and allow access.';
    case 'invalid_request':
      return 'The request was refused: ' + e.message;
  }
  return e.message || 'The request failed.';
}

function showError(e) {
  switch (e.code) {
    case 'reauthorization_required': // the user removed the app at Google, or the grant expired
    case 'insufficient_scope':
      $('reauth-text').textContent = e.code === 'insufficient_scope'
        ? 'Gmail read access was not granted. Connect again and tick the Gmail box.'
        : 'Gmail access was revoked or has expired. Connect again to continue.';
      $('reauth').hidden = false;
      clearMessages();
      notice('');
      setState('reauth');
      return;
    case 'invalid_session': // expired or signed with a retired key
    case 'missing_session':
      store.del('session', 'expires');
      notice('Your session is no longer valid; connect again.', 'info');
      render();
      return;
  }
  notice(explain(e, ''), 'error', e);
  setState('error');
}

// notice shows text in the status area; with an error e, its code (and the
// functions' own message) in small print.
function notice(text, kind, e) {
  $('notice-text').textContent = text;
  $('notice').className = 'notice ' + (kind || '');
  $('notice').hidden = !text;
  const fine = e ? [e.code, e.status ? 'HTTP ' + e.status : '', e.message && !text.includes(e.message) ? e.message : '']
    .filter(Boolean).join(' · ') : '';
  $('notice-code').textContent = fine;
  $('notice-code').hidden = !fine;
}

// busy shows what the page is waiting for and disables every control until
// it is done, so nothing is sent twice.
function busy(on, text) {
  working = on;
  document.body.classList.toggle('busy', on);
  $('busy-text').textContent = text || 'Working…';
  $('busy').hidden = !on;
  document.querySelectorAll('button, input').forEach(apply);
}

// enable sets whether a control is usable when nothing is under way.
function enable(id, on) {
  $(id).dataset.off = on ? '' : '1';
  apply($(id));
}

function apply(el) { el.disabled = working || el.dataset.off === '1'; }

function setState(s) { document.body.dataset.state = s; }

function render() {
  const s = session();
  $('signed-out').hidden = !!s;
  $('signed-in').hidden = !s;
  if (!s) {
    $('results').hidden = true;
    $('reauth').hidden = true;
    setState('signed-out');
    return;
  }
  $('who').textContent = store.get('who') || 'your Google account';
  const exp = new Date(store.get('expires'));
  $('expires').textContent = isNaN(exp) ? 'later' : exp.toLocaleTimeString(undefined, { timeStyle: 'short' });
  list();
}

// ---- wiring ----------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('api-base').textContent = API;
  $('login-hint').value = window.GMAILOAUTH.loginHint || '';
  $('connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); connect($('login-hint').value.trim()); });
  // Reconnect starts a fresh authorization with this page's own state. (The
  // error's authorization_url would work too, but it carries no state of ours.)
  $('reconnect').addEventListener('click', () => connect(store.get('who') || $('login-hint').value.trim()));
  $('disconnect').addEventListener('click', disconnect);
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(view, { q: $('q').value.trim(), tokens: [''], page: 0 });
    list();
  });
  // Refresh runs what is in the box: the same page again, or a new search
  // when the box was edited.
  $('refresh').addEventListener('click', () => {
    const q = $('q').value.trim();
    if (q !== view.q) Object.assign(view, { q, tokens: [''], page: 0 });
    list();
  });
  $('next').addEventListener('click', () => { view.page++; list(); });
  $('prev').addEventListener('click', () => { view.page = Math.max(0, view.page - 1); list(); });
  // New mail (events.js hears of it from the events to the app): the first
  // page, without a search, lists again. No reload, no polling of Gmail.
  window.addEventListener('gmailoauth:new-mail', () => {
    if (session() && view.page === 0 && !view.q && !working) list();
  });
  handleReturn();
  render();
});
