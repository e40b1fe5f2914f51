'use strict';
// iso8583_unpack.js - decodes one ISO 8583 message with the npm iso_8583 package (the peer in
// shared/peers) and prints its fields as one line of JSON, so a C test can check that the
// peer reads what wxbank packs in the ascii87b dialect.
//
//   node iso8583_unpack.js <peers-dir> <hex of the message, without framing>
//
// <peers-dir> is a copy of shared/peers where `npm ci` has run (it holds node_modules).
// Exit status 1 when the package reports an error.
const path = require('path');

const [dir, hex] = process.argv.slice(2);
if (!dir || !hex) {
  console.error('usage: node iso8583_unpack.js <peers-dir> <hex>');
  process.exit(2);
}
const Iso = require(path.join(path.resolve(dir), 'node_modules', 'iso_8583'));
const body = Buffer.from(hex, 'hex');
const frame = Buffer.alloc(body.length + 2); // the package expects the 2-byte length header
frame.writeUInt16BE(body.length, 0);
body.copy(frame, 2);
const out = new Iso().getIsoJSON(frame);
if (!out || out.error) {
  console.log(JSON.stringify(out));
  process.exit(1);
}
console.log(JSON.stringify(out));
