// Trains the two-moons workload in Node through moons_web.wasm and prints the same lines
// as the host (`cd edge/moons && cargo run --release --example trace --features std`):
//   epoch N loss X.XXXX   (formatted in Rust by moons::Line, integer arithmetic)
//   accuracy R/T
//   planned_bytes=B
// then the linear memory's size (`wasm_memory_bytes=`), every epoch's loss as f32 bits
// (`loss_bits=3ec9074b,...`, as `cargo run --release --example bits` prints on the host)
// and the module's size before and after wasm-opt. Exits non-zero below 95% accuracy,
// if the module reports a failure, if the accuracy recomputed here from the held-out
// points and moons_classify disagrees with moons_accuracy, or if a call with wrong
// arguments is not refused.
//
// usage: node train.mjs OPTIMIZED.wasm [RAW.wasm]
//   OPTIMIZED.wasm is trained (it is what the page loads); RAW.wasm, the module before
//   wasm-opt, is only measured.
import fs from 'node:fs';
import { load } from './moons.mjs';

const [optPath, rawPath] = process.argv.slice(2);
if (!optPath) {
  console.error('usage: node train.mjs OPTIMIZED.wasm [RAW.wasm]');
  process.exit(2);
}

const model = await load(fs.readFileSync(optPath));
const bits = [];
const word = new DataView(new ArrayBuffer(4));
for (let epoch = 1; epoch <= model.epochs; epoch++) {
  const { loss, line } = model.epoch();
  console.log(line);
  word.setFloat32(0, loss);
  bits.push(word.getUint32(0).toString(16).padStart(8, '0'));
}
const { right, total } = model.accuracy();
console.log(`accuracy ${right}/${total}`);
console.log(`planned_bytes=${model.plannedBytes()}`);
console.log(`loss_bits=${bits.join(',')}`);

// The same score, from the points the page draws and the classes it colours.
const { xy, labels } = model.heldOut();
const classes = model.classify(xy);
const again = classes.reduce((n, c, i) => n + (c === labels[i] ? 1 : 0), 0);
let failed = false;
if (again !== right) {
  console.error(`held-out points classified one by one: ${again}/${total}, moons_accuracy: ${right}/${total}`);
  failed = true;
}

// Misuse is refused with a null pointer, not a trap.
const n = model.heldOutLen;
const refused = {
  'moons_points(0)': model.e.moons_points(0),
  'moons_points(2^21 + 1)': model.e.moons_points(2 ** 21 + 1),
  'moons_classify(n + 1) after moons_points(n)': (model.e.moons_points(n), model.e.moons_classify(n + 1)),
};
for (const [call, ptr] of Object.entries(refused)) {
  if (ptr !== 0) {
    console.error(`${call} returned ${ptr}, not null`);
    failed = true;
  }
}

// Linear memory: shadow stack + data + heap, in 64 KiB pages (grown by the allocator).
console.log(`wasm_memory_bytes=${model.e.memory.buffer.byteLength}`);
const sizes = [];
if (rawPath) sizes.push(`wasm_bytes=${fs.statSync(rawPath).size}`);
sizes.push(`wasm_opt_bytes=${fs.statSync(optPath).size}`);
console.log(sizes.join(' '));

if (right * 100 < total * 95) {
  console.error(`accuracy ${right}/${total} is below 95%`);
  failed = true;
}
process.exit(failed ? 1 : 0);
