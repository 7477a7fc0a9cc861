// What this client knows of the room, rebuilt only from server messages.
// It owns the version rule: every transport and control change carries the
// session's one version counter, anything at or below the version already
// applied is stale, and a welcome or snapshot replaces everything. No DOM,
// no socket, no clock reads: callers pass server time in, so node tests it.

import { TimecodeFormat, timebase } from './timecode.js';
import { TransportSchedule } from './transport.js';

export class Room {
  constructor() {
    this.session = null;
    this.timeline = null;
    this.format = null;
    this.you = null;
    this.role = null;
    this.resume = null;
    // A playlist session's entries (WireEntry), the one on screen, and
    // its version; cues received but not yet due.
    this.playlist = [];
    this.entry = 0;
    this.mediaVersion = null;
    this.cues = [];
    // The version that put the room on its entry: transports older than
    // it belong to another timeline.
    this.entryVersion = 0;
    this.reset();
  }

  reset() {
    this.version = 0;
    this.schedule = new TransportSchedule();
    this.control = { driver: null, requests: [] };
    this.participants = new Map();
    this.counts = { hosts: 0, reviewers: 0, viewers: 0 };
    this.compare = null;
  }

  /**
   * Applies one server message. Returns which parts changed ('all',
   * 'transport', 'control', 'presence') or null when nothing did, so the UI
   * redraws only what it must.
   */
  apply(msg) {
    switch (msg.type) {
      case 'welcome':
        this.setSession(msg.session);
        this.playlist = msg.playlist ?? [];
        this.entry = msg.state.entry ?? 0;
        this.mediaVersion = msg.media?.version ?? null;
        this.cues = [];
        this.entryVersion = 0;
        this.you = msg.you;
        this.role = msg.role;
        this.resume = msg.resume;
        this.replace(msg.state);
        return 'all';
      case 'snapshot':
        // A resync: cues it missed or had pending are settled by where
        // the room now stands.
        this.cues = [];
        if ((msg.state.entry ?? 0) !== this.entry) {
          this.enterFromPlaylist(msg.state.entry ?? 0);
          this.entryVersion = msg.state.version;
        }
        this.replace(msg.state);
        return 'all';
      case 'playlist':
        // A version arrived (an upload): the room stays where it is.
        this.playlist = msg.entries;
        return 'playlist';
      case 'cue':
        if (msg.version <= this.version) return null;
        this.version = msg.version;
        this.schedule.push(msg.version, msg.executeAt, msg.transport);
        this.cues.push({
          at: msg.executeAt, version: msg.version, entry: msg.entry, session: msg.session, mediaVersion: msg.mediaVersion ?? null,
        });
        return 'transport';
      case 'transport':
        if (msg.version <= this.version) return null;
        this.version = msg.version;
        this.schedule.push(msg.version, msg.executeAt, msg.transport);
        return 'transport';
      case 'control':
        if (msg.version <= this.version) return null;
        this.version = msg.version;
        this.control = { driver: msg.driver ?? null, requests: [...msg.requests] };
        return 'control';
      case 'compare':
        if (msg.version <= this.version) return null;
        this.version = msg.version;
        this.compare = msg.compare ?? null;
        return 'compare';
      case 'presence':
        for (const p of msg.participants) this.participants.set(p.id, p);
        for (const id of msg.left) this.participants.delete(id);
        this.counts = msg.counts;
        return 'presence';
      default:
        return null;
    }
  }

  /**
   * Switches to the entry of each cue due by server instant `now`: its
   * timeline, labels and version change at the cue's instant, with its
   * transport. Returns whether the entry changed.
   */
  advance(now) {
    let changed = false;
    while (this.cues.length && this.cues[0].at <= now) {
      const cue = this.cues.shift();
      this.setSession(cue.session);
      this.entry = cue.entry;
      this.entryVersion = cue.version;
      this.mediaVersion = cue.mediaVersion;
      changed = true;
    }
    return changed;
  }

  setSession(session) {
    this.session = session;
    this.timeline = {
      fpsNum: session.fpsNum,
      fpsDen: session.fpsDen,
      duration: session.durationFrames,
    };
    this.format = TimecodeFormat.fromSession(session);
  }

  /** After a resync onto another entry: its timeline from the welcome's playlist. */
  enterFromPlaylist(entry) {
    const e = this.playlist[entry];
    this.entry = entry;
    if (!e) return;
    const [fpsNum, fpsDen = 1] = e.fps.split('/').map(Number);
    this.setSession({
      ...this.session,
      fps: e.fps,
      fpsNum,
      fpsDen,
      timebase: timebase(fpsNum, fpsDen),
      dropFrame: e.dropFrame,
      durationFrames: e.durationFrames,
      startTimecode: e.startTimecode,
    });
    this.mediaVersion = e.version;
  }

  /** Whether a record made on `versionId` belongs on screen now. */
  showsVersion(versionId) {
    // While comparing, the version beside the one on screen is shown too.
    if (versionId != null && versionId === this.compare?.version) return true;
    return versionId == null || this.mediaVersion == null || versionId === this.mediaVersion.id;
  }

  replace(state) {
    this.version = state.version;
    this.schedule.reset(state.transport, state.version);
    this.control = { driver: state.control.driver ?? null, requests: [...state.control.requests] };
    this.participants = new Map(state.participants.map((p) => [p.id, p]));
    this.counts = state.counts;
    // The version compared beside the one on screen, if any.
    this.compare = state.compare ?? null;
  }

  get joined() {
    return this.session !== null;
  }

  isDriver() {
    return this.you !== null && this.control.driver === this.you;
  }

  /** Hosts and reviewers can hold the seat; viewers never. */
  canDrive() {
    return this.role === 'host' || this.role === 'reviewer';
  }

  hasRequested() {
    return this.control.requests.includes(this.you);
  }

  nameOf(id) {
    if (id == null) return null;
    return this.participants.get(id)?.name ?? `#${id}`;
  }
}
