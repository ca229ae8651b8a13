// Trains the two-moons workload in Node through moons_web.wasm and prints the same lines
// as the host (`cd edge/moons && cargo run --release --example trace --features std`):
//   epoch N loss X.XXXX   (formatted in Rust by moons::Line, integer arithmetic)
//   accuracy R/T
//   planned_bytes=B
// then every epoch's loss as f32 bits (`loss_bits=3ec9074b,...`, as `cargo run --release
// --example bits` prints on the host) and the module's size before and after wasm-opt. Exits non-zero below 95% accuracy,
// if the module reports a failure, or if the accuracy recomputed here from the held-out
// points and moons_classify disagrees with moons_accuracy.
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

const sizes = [];
if (rawPath) sizes.push(`wasm_bytes=${fs.statSync(rawPath).size}`);
sizes.push(`wasm_opt_bytes=${fs.statSync(optPath).size}`);
console.log(sizes.join(' '));

if (right * 100 < total * 95) {
  console.error(`accuracy ${right}/${total} is below 95%`);
  failed = true;
}
process.exit(failed ? 1 : 0);
