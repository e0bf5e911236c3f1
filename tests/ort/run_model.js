// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on .npy inputs and
// writes each output as .npy. A test helper: the tests compare what ONNX
// Runtime computes from an exported model with what an onnxc plan computes.
//
//   node run_model.js MODEL.onnx OUT_DIR NAME=INPUT.npy ...
//
// Output K is written to OUT_DIR/<output name>.npy (float32/int64 only).
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const dir = process.env.ONNXC_ORT_DIR;
  const candidates = [dir && path.join(dir, 'node_modules', 'onnxruntime-node'), 'onnxruntime-node'];
  for (const c of candidates) {
    if (!c) continue;
    try { return require(c); } catch (e) { /* next */ }
  }
  throw new Error('onnxruntime-node is not installed (scripts/setup.sh --ort)');
}

const DTYPES = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array],
                 '|b1': ['bool', Uint8Array], '<i4': ['int32', Int32Array] };

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(file + ': not .npy');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(file + ': fortran order');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim())
    .filter(s => s.length).map(Number);
  const [type, Arr] = DTYPES[descr] || [];
  if (!type) throw new Error(file + ': dtype ' + descr);
  const off = start + hlen;
  const data = new Arr(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length));
  return { type, data: type === 'bool' ? Uint8Array.from(data) : data, dims: shape };
}

function writeNpy(file, tensor) {
  const descr = { float32: '<f4', int64: '<i8', int32: '<i4', bool: '|b1' }[tensor.type];
  if (!descr) throw new Error('cannot write ' + tensor.type);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  const body = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const [model, outDir, ...specs] = process.argv.slice(2);
  const ort = loadOrt();
  const feeds = {};
  for (const s of specs) {
    const eq = s.indexOf('=');
    const t = readNpy(s.slice(eq + 1));
    feeds[s.slice(0, eq)] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of session.outputNames) writeNpy(path.join(outDir, name + '.npy'), results[name]);
}

main().catch(e => { console.error('run_model.js: ' + e.message); process.exit(1); });
