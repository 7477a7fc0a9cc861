// What this client knows of the room, rebuilt only from server messages.
// It owns the version rule: every transport and control change carries the
// session's one version counter, anything at or below the version already
// applied is stale, and a welcome or snapshot replaces everything. No DOM,
// no socket, no clock reads: callers pass server time in, so node tests it.

import { TimecodeFormat } from './timecode.js';
import { TransportSchedule } from './transport.js';

export class Room {
  constructor() {
    this.session = null;
    this.timeline = null;
    this.format = null;
    this.you = null;
    this.role = null;
    this.resume = null;
    this.reset();
  }

  reset() {
    this.version = 0;
    this.schedule = new TransportSchedule();
    this.control = { driver: null, requests: [] };
    this.participants = new Map();
    this.counts = { hosts: 0, reviewers: 0, viewers: 0 };
  }

  /**
   * Applies one server message. Returns which parts changed ('all',
   * 'transport', 'control', 'presence') or null when nothing did, so the UI
   * redraws only what it must.
   */
  apply(msg) {
    switch (msg.type) {
      case 'welcome':
        this.session = msg.session;
        this.timeline = {
          fpsNum: msg.session.fpsNum,
          fpsDen: msg.session.fpsDen,
          duration: msg.session.durationFrames,
        };
        this.format = TimecodeFormat.fromSession(msg.session);
        this.you = msg.you;
        this.role = msg.role;
        this.resume = msg.resume;
        this.replace(msg.state);
        return 'all';
      case 'snapshot':
        this.replace(msg.state);
        return 'all';
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
      case 'presence':
        for (const p of msg.participants) this.participants.set(p.id, p);
        for (const id of msg.left) this.participants.delete(id);
        this.counts = msg.counts;
        return 'presence';
      default:
        return null;
    }
  }

  replace(state) {
    this.version = state.version;
    this.schedule.reset(state.transport, state.version);
    this.control = { driver: state.control.driver ?? null, requests: [...state.control.requests] };
    this.participants = new Map(state.participants.map((p) => [p.id, p]));
    this.counts = state.counts;
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
