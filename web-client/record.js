// The review record's buttons over REST: an export of the record (the
// version on screen, or every playlist entry) saved as a file, and the
// host ending the live review with a second click. It only asks the
// server; what follows (the `ended` broadcast) comes through the room.

/** The answer's typed error, as the toasts show it. */
export async function apiError(res) {
  const body = await res.json().catch(() => null);
  return { code: body?.error?.code ?? `http_${res.status}`, message: body?.error?.message ?? res.statusText };
}

/** How long the end button stays armed for its second click. */
const END_ARMED_MS = 4_000;

export class RecordActions {
  /** `linkFetch(path, method)` calls this session's REST API with the page's link token; `endedAt()` is null while the review runs. */
  constructor({ linkFetch, room, ui, endedAt }) {
    this.linkFetch = linkFetch;
    this.room = room;
    this.ui = ui;
    this.endedAt = endedAt;
    this.endArmedUntil = 0;
  }

  /** Downloads the record as `format`: of the version on screen, or with `whole` of every playlist entry. */
  async export(format, whole = false) {
    const { room, ui } = this;
    if (!room.joined) return;
    ui.setRecordStatus(format === 'html' ? 'Rendering the report’s stills…' : `Exporting ${format.toUpperCase()}…`);
    try {
      // The version on screen here: in a personal room after the end, that
      // may not be the one the shared room last showed.
      const onScreen = room.mediaVersion ? `?version=${encodeURIComponent(room.mediaVersion.id)}` : '';
      const version = whole ? '?version=all' : onScreen;
      const res = await this.linkFetch(`/export/${format}${version}`);
      if (!res.ok) {
        const { code, message } = await apiError(res);
        ui.setRecordStatus('');
        ui.toast('error', code, message, { about: 'Not exported' });
        return;
      }
      const name = res.headers.get('content-disposition')?.match(/filename="([^"]+)"/)?.[1] ?? `syncreel.${format}`;
      const url = URL.createObjectURL(await res.blob());
      const a = Object.assign(document.createElement('a'), { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      ui.setRecordStatus(`Saved ${name}`);
    } catch (err) {
      ui.setRecordStatus('');
      ui.toast('error', 'offline', err.message, { about: 'The export did not come' });
    }
  }

  /** First click arms, a second within four seconds ends the live review for everyone. */
  async end() {
    const { room, ui } = this;
    if (!room.joined || room.role !== 'host' || this.endedAt() != null) return;
    if (performance.now() > this.endArmedUntil) {
      this.endArmedUntil = performance.now() + END_ARMED_MS;
      ui.armEndReview(true);
      setTimeout(() => {
        if (performance.now() >= this.endArmedUntil) ui.armEndReview(false);
      }, END_ARMED_MS + 100);
      return;
    }
    this.endArmedUntil = 0;
    ui.armEndReview(false);
    try {
      const res = await this.linkFetch('/end', 'POST');
      if (!res.ok) {
        const { code, message } = await apiError(res);
        ui.toast('error', code, message, { about: 'The review was not ended' });
      }
      // Everyone, this page included, hears `ended` from the room.
    } catch (err) {
      ui.toast('error', 'offline', err.message, { about: 'The review was not ended' });
    }
  }
}
