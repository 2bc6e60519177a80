// The end of a worker. A worker that ends without an error (the browser ends it, a helper thread stops) tells
// nobody. So each holds a Web Lock from its start until it ends, and the page asks for the same lock (index.js
// _watch): the browser grants it when the holder is gone, even while the session's worker waits on a helper
// thread that will never answer.

let sessionLock = null; // this worker's lock (the session worker's: its helpers' are named after it)
let held = Promise.resolve(false); // this worker's lock is held (true), or cannot be (no Web Locks: false)

/** Hold the Web Lock `name` until this worker ends; resolves true once it is held, false without Web Locks. */
export function holdLock(name) {
  sessionLock = name;
  held = new Promise((granted) => {
    if (!self.navigator?.locks) {
      granted(false);
      return;
    }
    navigator.locks.request(name, () => {
      granted(true);
      return new Promise(() => {}); // held until this worker ends
    }).catch(() => granted(false));
  });
  return held;
}

/** Resolves once this worker's lock is held (or cannot be): a helper serves steps only then. */
export const lockHeld = () => held;

/** The lock of helper thread t of this session, or null without a session lock. */
export const helperLock = (t) => (sessionLock ? `${sessionLock} helper ${t}` : null);
