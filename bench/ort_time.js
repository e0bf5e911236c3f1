// The ONNX Runtime anchor of the speed benchmark (bench/run.sh).
//
//   node ort_time.js run MODEL.onnx INPUT_DIR THREADS REPEAT
//       times REPEAT session.run calls after 2 warm-up runs; inputs are
//       INPUT_DIR/input_K.npy, bound to the model's inputs by position
//   node ort_time.js create MODEL.onnx THREADS REPEAT
//       times InferenceSession.create (graph optimizations included)
//
// Prints median_ms, min_ms and max_ms (one line each). One intra-op pool of
// THREADS threads, no inter-op parallelism, sequential execution, all graph
// optimizations: ORT's defaults for a CPU session apart from the threads.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = process.env.ONNXC_ORT_DIR ||
    path.join(__dirname, '..', '.deps', 'ort');
  return require(path.join(dir, 'node_modules', 'onnxruntime-node'));
}

const DTYPES = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array],
                 '<i4': ['int32', Int32Array] };

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(file + ': not .npy');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim())
    .filter(s => s.length).map(Number);
  const [type, Arr] = DTYPES[descr] || [];
  if (!type) throw new Error(file + ': dtype ' + descr);
  const off = start + hlen;
  const data = new Arr(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length));
  return { type, data, dims: shape };
}

function stats(ms) {
  ms.sort((a, b) => a - b);
  const n = ms.length;
  const med = n % 2 ? ms[(n - 1) / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  console.log('median_ms: ' + med.toFixed(4));
  console.log('min_ms: ' + ms[0].toFixed(4));
  console.log('max_ms: ' + ms[n - 1].toFixed(4));
}

function options(threads) {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
           graphOptimizationLevel: 'all' };
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const [mode, model, ...rest] = process.argv.slice(2);
  const ort = loadOrt();
  if (mode === 'create') {
    const threads = Number(rest[0]), repeat = Number(rest[1]);
    const ms = [];
    for (let k = 0; k < repeat + 1; k++) {
      const t0 = nowMs();
      const s = await ort.InferenceSession.create(model, options(threads));
      const t1 = nowMs();
      if (k > 0) ms.push(t1 - t0);
      if (s.release) await s.release();
    }
    stats(ms);
    return;
  }
  if (mode !== 'run') throw new Error('unknown mode ' + mode);
  const [dir, threadsS, repeatS] = rest;
  const threads = Number(threadsS), repeat = Number(repeatS);
  const session = await ort.InferenceSession.create(model, options(threads));
  const feeds = {};
  session.inputNames.forEach((name, k) => {
    const t = readNpy(path.join(dir, 'input_' + k + '.npy'));
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  });
  for (let k = 0; k < 2; k++) await session.run(feeds);
  const ms = [];
  for (let k = 0; k < repeat; k++) {
    const t0 = nowMs();
    await session.run(feeds);
    ms.push(nowMs() - t0);
  }
  stats(ms);
}

main().catch(e => { console.error('ort_time.js: ' + e.message); process.exit(1); });
