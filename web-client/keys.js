// NLE keyboard conventions mapped onto intents. Letters are read by
// physical position (event.code) because J/K/L are a hand position, not
// letters. Nothing here sends anything: it calls the actions it is given.

/** Where the next L (dir 1) or J (dir -1) takes a transport. */
export function nextShuttleSpeed(transport, dir) {
  if (!transport?.playing || Math.sign(transport.speed) !== dir) return dir;
  const magnitude = Math.min(4, Math.max(1, Math.floor(Math.abs(transport.speed)) + 1));
  return dir * magnitude;
}

/** Keys typed into a text field belong to the field. */
export function isTyping(target) {
  if (!target || !target.tagName) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag !== 'INPUT') return false;
  return !['range', 'button', 'checkbox', 'radio', 'submit', 'reset'].includes(target.type);
}

/**
 * Binds the shortcuts. `actions` has: playPause, shuttle(dir, half), pause,
 * step(n), loopIn, loopOut, home, end, and optionally backToRoom,
 * toggleOverlay (H: what sits on the picture), clearMarks (G), and this
 * viewer's own view of the picture: toggleFullscreen (F), zoomIn (+),
 * zoomOut (-), zoomPixel (1: one picture pixel to one screen pixel),
 * zoomFit (0).
 */
export function bindKeys(target, actions) {
  const handler = (ev) => {
    if (ev.defaultPrevented || isTyping(ev.target)) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const act = route(ev);
    if (!act) return;
    // Also stops a focused button from treating Space as a click, which
    // would toggle play twice.
    ev.preventDefault();
    act();
  };
  const route = (ev) => {
    // Held-down toggles would flap; held-down steps are how people jog.
    const once = (fn) => (ev.repeat ? () => {} : fn);
    switch (ev.code) {
      case 'Space': return once(actions.playPause);
      case 'KeyK': return once(actions.pause);
      case 'KeyL': return once(() => actions.shuttle(1, ev.shiftKey));
      case 'KeyJ': return once(() => actions.shuttle(-1, ev.shiftKey));
      case 'KeyI': return once(actions.loopIn);
      case 'KeyO': return once(actions.loopOut);
      // Avid's "clear both marks"; F, H and + - 0 1 are taken.
      case 'KeyG': return actions.clearMarks ? once(actions.clearMarks) : null;
      case 'ArrowLeft': return () => actions.step(ev.shiftKey ? -10 : -1);
      case 'ArrowRight': return () => actions.step(ev.shiftKey ? 10 : 1);
      case 'Home': return once(actions.home);
      case 'End': return once(actions.end);
      case 'Escape': return actions.backToRoom ? once(actions.backToRoom) : null;
      case 'KeyH': return actions.toggleOverlay ? once(actions.toggleOverlay) : null;
      case 'KeyF': return actions.toggleFullscreen ? once(actions.toggleFullscreen) : null;
      // + is Shift+= on most layouts: either way the same key zooms in.
      case 'Equal': case 'NumpadAdd': return actions.zoomIn ?? null;
      case 'Minus': case 'NumpadSubtract': return actions.zoomOut ?? null;
      case 'Digit1': case 'Numpad1': return actions.zoomPixel ? once(actions.zoomPixel) : null;
      case 'Digit0': case 'Numpad0': return actions.zoomFit ? once(actions.zoomFit) : null;
      default: return null;
    }
  };
  target.addEventListener('keydown', handler);
  return () => target.removeEventListener('keydown', handler);
}
