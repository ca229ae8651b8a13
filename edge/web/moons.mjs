// The JavaScript side of moons_web.wasm, shared by train.mjs (Node) and index.html (the
// browser): instantiate the module and call its C-ABI exports (src/lib.rs documents them).
// Every failure the module reports (-1, NaN, a null pointer) becomes a thrown Error.

/** Instantiates the module from its bytes (a BufferSource) and wraps its exports. */
export async function load(bytes) {
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return new Moons(instance.exports);
}

export class Moons {
  constructor(exports) {
    this.e = exports;
    if (this.e.moons_new() !== 0) throw new Error('moons_new: the model could not be built');
    this.epochs = this.e.moons_epochs();
    this.heldOutLen = this.e.moons_held_out_len();
  }

  // Views are made per call: memory.grow detaches the old ArrayBuffer.
  bytes(ptr, len) { return new Uint8Array(this.e.memory.buffer, ptr, len); }
  floats(ptr, len) { return new Float32Array(this.e.memory.buffer, ptr, len); }

  /** Trains one epoch; returns its mean loss and the trace line Rust formatted. */
  epoch() {
    const loss = this.e.moons_epoch();
    if (Number.isNaN(loss)) throw new Error('moons_epoch failed');
    const len = this.e.moons_trace();
    const line = new TextDecoder().decode(this.bytes(this.e.moons_text(), len));
    return { loss, line };
  }

  /** Held-out points classified correctly: { right, total }. */
  accuracy() {
    const right = this.e.moons_accuracy();
    if (right < 0) throw new Error('moons_accuracy failed');
    return { right, total: this.heldOutLen };
  }

  /** The held-out points accuracy() scores: { xy: Float32Array [2n], labels: Float32Array [n] }. */
  heldOut() {
    const n = this.heldOutLen;
    const ptr = this.e.moons_held_out();
    if (ptr === 0) throw new Error('moons_held_out failed');
    const all = this.floats(ptr, 3 * n).slice();
    return { xy: all.subarray(0, 2 * n), labels: all.subarray(2 * n) };
  }

  /** Classes (0 or 1) of the points in xy (x, y pairs), through the trained machine. */
  classify(xy) {
    const n = xy.length / 2;
    const ptr = this.e.moons_points(n);
    if (ptr === 0) throw new Error(`moons_points(${n}) failed`);
    this.floats(ptr, 2 * n).set(xy);
    const out = this.e.moons_classify(n);
    if (out === 0) throw new Error('moons_classify failed');
    return this.bytes(out, n).slice();
  }

  /** Bytes the machine planned for its values. */
  plannedBytes() { return this.e.moons_planned_bytes(); }
}
