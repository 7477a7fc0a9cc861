// Sending media into the session (hosts): a small tus 1.0 client on
// XMLHttpRequest (for progress within a chunk), with a checksum on every
// chunk, pause and resume, and the upload's URL kept in localStorage so
// that after a reload or a dropped network, choosing the same file again
// goes on from where the server stopped. The server decides what the file
// becomes (docs/uploads.md); this only sends it and says what happened.

import { apiError } from './record.js';

/** Bytes per PATCH: what a dropped connection can cost. */
export const CHUNK_BYTES = 8 << 20;
const KEY_PREFIX = 'syncreel.upload.';
/** Failed requests in a row before the upload stops and says why. */
const RETRIES = 5;
/** Refusals that asking the server where it stands can get past. */
const RETRYABLE = new Set(['offset_mismatch', 'upload_locked', 'checksum_mismatch', 'store', 'busy']);

/** Where a file's upload to this session is remembered across reloads. */
export function uploadKey(sessionId, file) {
  return `${KEY_PREFIX}${sessionId}:${file.name}:${file.size}:${file.lastModified}`;
}

/** `Upload-Metadata` for these pairs (values UTF-8, base64). */
export function metadataHeader(pairs) {
  return Object.entries(pairs)
    .filter(([, v]) => v != null && v !== '')
    .map(([k, v]) => {
      const bytes = new TextEncoder().encode(String(v));
      let binary = '';
      for (const b of bytes) binary += String.fromCharCode(b);
      return `${k} ${btoa(binary)}`;
    })
    .join(',');
}

/** `12.5 of 200.0 MB · 48.1 MB/s · 4 s left` */
export function progressText(sent, total, bytesPerSec) {
  const mb = (n) => (n / 1e6).toFixed(1);
  const parts = [`${mb(sent)} of ${mb(total)} MB`];
  if (bytesPerSec > 0 && sent < total) {
    parts.push(`${mb(bytesPerSec)} MB/s`);
    const left = Math.ceil((total - sent) / bytesPerSec);
    parts.push(left >= 90 ? `${Math.round(left / 60)} min left` : `${left} s left`);
  }
  return parts.join(' · ');
}

/**
 * What became of an upload's review proxy (`proxy` from the upload's
 * status), as the panel says it; '' when it wants none.
 */
export function proxyText(proxy) {
  switch (proxy?.state) {
    case 'pending':
      return 'Review proxy: waiting to start';
    case 'making':
      return `Review proxy: ${Math.floor((proxy.progress ?? 0) * 100)} %`;
    case 'ready':
      return 'Review proxy ready: the room plays it';
    case 'failed':
      return `Review proxy failed (${proxy.error ?? 'no reason given'}): the room plays the source`;
    default:
      return '';
  }
}

/** How often the panel asks how a review proxy is getting on. */
const PROXY_POLL_MS = 1000;

async function chunkChecksum(blob) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  let binary = '';
  for (const b of digest) binary += String.fromCharCode(b);
  return `sha256 ${btoa(binary)}`;
}

/**
 * One file on its way. `headers()` gives the credential headers; `onChange`
 * is called with this after every step (progress, pause, end).
 */
export class Upload {
  constructor({ file, sessionId, item, headers, onChange, chunkBytes = CHUNK_BYTES }) {
    Object.assign(this, { file, sessionId, item, headers, onChange, chunkBytes });
    this.state = 'starting';
    this.offset = 0;
    this.resumedFrom = null;
    this.sent = 0;
    this.rate = 0;
    this.error = null;
    this.version = null;
    this.url = null;
    this.xhr = null;
  }

  get key() {
    return uploadKey(this.sessionId, this.file);
  }

  /** Finds the remembered upload of this file or makes one, then sends. */
  async start() {
    try {
      const known = localStorage.getItem(this.key);
      if (known) {
        const head = await fetch(known, { method: 'HEAD', headers: this.tusHeaders() });
        if (head.ok) {
          this.url = known;
          this.offset = Number(head.headers.get('upload-offset'));
          this.resumedFrom = this.offset;
        } else {
          localStorage.removeItem(this.key);
        }
      }
      if (!this.url) await this.create();
      this.sent = this.offset;
      await this.send();
    } catch (err) {
      this.fail('offline', err.message);
    }
  }

  pause() {
    if (this.state !== 'sending') return;
    this.state = 'paused';
    this.xhr?.abort();
    this.changed();
  }

  resume() {
    if (this.state !== 'paused') return;
    this.settleThenSend(0);
  }

  tusHeaders(extra = {}) {
    return { ...this.headers(), 'tus-resumable': '1.0.0', ...extra };
  }

  async create() {
    const res = await fetch('/api/uploads', {
      method: 'POST',
      headers: this.tusHeaders({
        'upload-length': String(this.file.size),
        'upload-metadata': metadataHeader({ filename: this.file.name, item: this.item, session: this.sessionId }),
      }),
    });
    if (res.status !== 201) {
      const { code, message } = await apiError(res);
      throw Object.assign(new Error(message), { code });
    }
    this.url = new URL(res.headers.get('location'), location.href).pathname;
    localStorage.setItem(this.key, this.url);
  }

  async send() {
    this.state = 'sending';
    this.changed();
    const started = performance.now();
    const from = this.offset;
    let failures = 0;
    // Bounded: each turn sends a chunk or spends one of RETRIES.
    while (this.state === 'sending') {
      const end = Math.min(this.file.size, this.offset + this.chunkBytes);
      const chunk = this.file.slice(this.offset, end);
      let answer;
      try {
        answer = await this.patch(chunk, await chunkChecksum(chunk), (loaded) => {
          this.sent = this.offset + loaded;
          this.rate = (this.sent - from) / Math.max(1e-3, (performance.now() - started) / 1000);
          this.changed();
        });
      } catch {
        if (this.state !== 'sending') return;
        failures += 1;
        if (failures > RETRIES) return this.fail('offline', 'the connection keeps dropping; choose the file again to go on');
        await this.settle(failures);
        continue;
      }
      if (answer.status === 204) {
        failures = 0;
        this.offset = Number(answer.getResponseHeader('upload-offset'));
        this.sent = this.offset;
        if (this.offset === this.file.size) return this.finish();
        this.changed();
        continue;
      }
      const body = (() => {
        try { return JSON.parse(answer.responseText); } catch { return null; }
      })();
      const code = body?.error?.code ?? `http_${answer.status}`;
      const message = body?.error?.message ?? '';
      if (RETRYABLE.has(code) && failures < RETRIES) {
        failures += 1;
        await this.settle(failures);
        continue;
      }
      // Refused for what the file is: nothing to resume.
      localStorage.removeItem(this.key);
      return this.fail(code, message);
    }
  }

  /** Asks the server where the upload stands, after a short wait. */
  async settle(failures) {
    await new Promise((r) => setTimeout(r, 200 * 2 ** Math.min(failures, 5)));
    const head = await fetch(this.url, { method: 'HEAD', headers: this.tusHeaders() }).catch(() => null);
    if (head?.ok) this.offset = Number(head.headers.get('upload-offset'));
  }

  async settleThenSend(failures) {
    await this.settle(failures);
    this.sent = this.offset;
    await this.send();
  }

  patch(chunk, checksum, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('PATCH', this.url);
      const headers = this.tusHeaders({
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(this.offset),
        'upload-checksum': checksum,
      });
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => reject(new Error('network'));
      xhr.onabort = () => reject(new Error('aborted'));
      xhr.send(chunk);
    });
  }

  async finish() {
    localStorage.removeItem(this.key);
    const status = await this.status();
    this.version = status?.version ?? null;
    this.duplicate = status?.duplicate === true;
    this.proxy = status?.proxy ?? null;
    this.state = 'done';
    this.changed();
    this.watchProxy();
  }

  async status() {
    try {
      const res = await fetch(this.url, { headers: this.headers() });
      return res.ok ? await res.json() : null;
    } catch {
      return null;
    }
  }

  /** Follows a proxy being made (the server says how far it is) until it is ready or failed. */
  watchProxy() {
    if (!['pending', 'making'].includes(this.proxy?.state)) return;
    setTimeout(async () => {
      const status = await this.status();
      if (status?.proxy) this.proxy = status.proxy;
      this.changed();
      this.watchProxy();
    }, PROXY_POLL_MS);
  }

  fail(code, message) {
    this.state = 'failed';
    this.error = { code, message };
    this.changed();
  }

  changed() {
    this.onChange?.(this);
  }
}

/**
 * The host's upload panel: a drop zone (and a file button), the item
 * name, a progress bar with rate and time left, pause/resume, and what
 * became of the file.
 */
export class UploadPanel {
  constructor({ ui, sessionId, headers, show, canShow }) {
    Object.assign(this, { ui, sessionId, headers, show, canShow });
    this.upload = null;
    const $ = (id) => document.getElementById(id);
    this.el = {
      panel: $('upload-panel'), drop: $('upload-drop'), input: $('upload-input'), item: $('upload-item'),
      bar: $('upload-progress'), status: $('upload-status'), pause: $('upload-pause'), showIt: $('upload-show'),
      proxy: $('upload-proxy'),
    };
    this.el.showIt.addEventListener('click', () => {
      if (this.upload?.version) this.show?.(this.upload.version.id);
    });
    this.el.input.addEventListener('change', () => {
      if (this.el.input.files[0]) this.send(this.el.input.files[0]);
      this.el.input.value = '';
    });
    this.el.drop.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      this.el.drop.classList.add('over');
    });
    this.el.drop.addEventListener('dragleave', () => this.el.drop.classList.remove('over'));
    this.el.drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      this.el.drop.classList.remove('over');
      const file = ev.dataTransfer?.files?.[0];
      if (file) this.send(file);
    });
    this.el.pause.addEventListener('click', () => {
      if (this.upload?.state === 'sending') this.upload.pause();
      else if (this.upload?.state === 'paused') this.upload.resume();
    });
  }

  /** Hosts only: the server refuses anyone else anyway. */
  showFor(role) {
    this.el.panel.hidden = role !== 'host';
  }

  /**
   * Offers to put the uploaded version on screen once the room has it in
   * its playlist, off screen, and this page drives (`canShow(versionId)`).
   */
  offer() {
    const v = this.upload?.state === 'done' ? this.upload.version : null;
    this.el.showIt.hidden = !v || !this.canShow(v.id);
    if (v) this.el.showIt.textContent = `Show ${v.item} v${v.number} in the room`;
  }

  send(file) {
    if (this.upload && ['starting', 'sending'].includes(this.upload.state)) return;
    this.upload = new Upload({
      file, sessionId: this.sessionId(), item: this.el.item.value.trim() || null, headers: this.headers,
      onChange: (u) => this.render(u),
    });
    this.upload.start();
  }

  render(u) {
    const { bar, status, pause } = this.el;
    bar.hidden = u.state === 'failed';
    bar.value = u.file.size ? u.sent / u.file.size : 0;
    pause.hidden = !['sending', 'paused'].includes(u.state);
    pause.textContent = u.state === 'paused' ? 'Resume' : 'Pause';
    const resumed = u.resumedFrom ? ` (resumed at ${(u.resumedFrom / 1e6).toFixed(1)} MB)` : '';
    status.dataset.state = u.state;
    const proxy = u.state === 'done' ? u.proxy : null;
    this.el.proxy.textContent = proxyText(proxy);
    this.el.proxy.dataset.state = proxy?.state ?? '';
    switch (u.state) {
      case 'sending':
        status.textContent = `${u.file.name}: ${progressText(u.sent, u.file.size, u.rate)}${resumed}`;
        break;
      case 'paused':
        status.textContent = `${u.file.name}: paused at ${progressText(u.offset, u.file.size, 0)}`;
        break;
      case 'done': {
        const v = u.version;
        status.textContent = v
          ? `${v.item} v${v.number} is in${u.duplicate ? ' (the server already had these bytes)' : ''}: ${v.media}`
          : `${u.file.name} is in.`;
        this.offer();
        break;
      }
      case 'failed':
        status.textContent = `${u.file.name} was not uploaded.`;
        this.offer();
        this.ui.toast('error', u.error.code, u.error.message, { about: 'Upload refused' });
        break;
      default:
        status.textContent = `${u.file.name}: starting…`;
    }
  }
}
