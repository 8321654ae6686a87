/**
 * A real slow network mount, for the read-timeout tests: a FUSE file system served by this script
 * (run as its own process) whose root is one regular file. It answers the kernel's INIT, GETATTR
 * and OPEN, serves reads of the first `serveBytes` bytes from a given file, and never answers a
 * read past them — so a read(2) of the header blocks in the kernel exactly as one on a hung NFS
 * share does (no mocking: the reader under test calls the real fs). Like NFS it lets a reader that
 * is being killed go (FUSE_INTERRUPT answered with EINTR); closing /dev/fuse (this process ending)
 * fails every pending read with ENOTCONN.
 *
 * Usage: node stuckFuse.js <mountpoint (a regular file)> <source file> <serveBytes>
 *        node stuckFuse.js <mountpoint (a folder)> - 0 dir
 * The second form mounts a folder whose listing never answers (READDIR left pending, names looked up
 * in it not found): a folder on a share that hangs as it is listed.
 * Needs root (or CAP_SYS_ADMIN), /dev/fuse and mount(8); prints "ready" once mounted.
 *
 * Protocol: include/uapi/linux/fuse.h (fuse_in_header 40 bytes, fuse_out_header 16, fuse_init_out,
 * fuse_attr_out, fuse_open_out); mounted with `mount -i -t fuse -o fd=3,rootmode=100000,…` as
 * libfuse's fusermount does (rootmode S_IFREG: the mount point and the root are a regular file).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

const FUSE_LOOKUP = 1;
const FUSE_GETATTR = 3;
const FUSE_OPENDIR = 27;
const FUSE_READDIR = 28;
const FUSE_RELEASEDIR = 29;
const ENOENT = 2;
const FUSE_OPEN = 14;
const FUSE_READ = 15;
const FUSE_RELEASE = 18;
const FUSE_FLUSH = 25;
const FUSE_INIT = 26;
const FUSE_INTERRUPT = 36;
const FUSE_DESTROY = 38;
const ENOSYS = 38;
const EINTR = 4;

function main(): void {
  const [mountpoint, source, serve, kind] = process.argv.slice(2);
  const dir = kind === 'dir';
  const serveBytes = Number(serve);
  const size = dir ? 0 : fs.statSync(source!).size;
  const src = dir ? -1 : fs.openSync(source!, 'r');
  const dev = fs.openSync('/dev/fuse', 'r+');
  const st = fs.statSync(mountpoint!);
  const m = spawnSync('mount', ['-i', '-t', 'fuse', '-o', `fd=3,rootmode=${dir ? '40000' : '100000'},user_id=${st.uid},group_id=${st.gid},allow_other`, 'stuckfuse', mountpoint!], { stdio: ['ignore', 'inherit', 'inherit', dev] });
  if (m.status !== 0) {
    process.stderr.write(`mount failed (${m.status})\n`);
    process.exit(3);
  }
  process.stdout.write('ready\n');
  const buf = Buffer.alloc(1 << 21);
  /** Reads left unanswered, by request id. */
  const pending = new Set<bigint>();
  const reply = (unique: bigint, error: number, body?: Buffer) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + (body?.length ?? 0), 0);
    h.writeInt32LE(-error, 4);
    h.writeBigUInt64LE(unique, 8);
    fs.writeSync(dev, body ? Buffer.concat([h, body]) : h);
  };
  const attr = () => {
    const a = Buffer.alloc(104);
    a.writeBigUInt64LE(3600n, 0); // attr_valid
    a.writeBigUInt64LE(1n, 16); // ino
    a.writeBigUInt64LE(BigInt(size), 24);
    a.writeBigUInt64LE(BigInt(Math.ceil(size / 512)), 32);
    a.writeUInt32LE(dir ? 0o40555 : 0o100444, 76); // mode: a folder r-xr-xr-x, or a regular file r--r--r--
    a.writeUInt32LE(1, 80); // nlink
    a.writeUInt32LE(st.uid, 84);
    a.writeUInt32LE(st.gid, 88);
    a.writeUInt32LE(4096, 96); // blksize
    return a;
  };
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(dev, buf, 0, buf.length, null);
    } catch {
      return; // unmounted
    }
    if (n < 40) continue;
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    if (opcode === FUSE_INIT) {
      const out = Buffer.alloc(64);
      out.writeUInt32LE(7, 0);
      out.writeUInt32LE(Math.min(31, buf.readUInt32LE(44)), 4);
      out.writeUInt32LE(0, 8); // max_readahead: read exactly what is asked
      out.writeUInt16LE(1, 16); // max_background
      out.writeUInt16LE(1, 18);
      out.writeUInt32LE(1 << 20, 20); // max_write
      out.writeUInt32LE(1, 24); // time_gran
      reply(unique, 0, out);
    } else if (opcode === FUSE_GETATTR) reply(unique, 0, attr());
    else if (opcode === FUSE_LOOKUP) reply(unique, ENOENT);
    else if (opcode === FUSE_OPENDIR) reply(unique, 0, Buffer.alloc(16));
    else if (opcode === FUSE_READDIR) pending.add(unique); // the listing never comes
    else if (opcode === FUSE_RELEASEDIR) reply(unique, 0);
    else if (opcode === FUSE_OPEN) {
      const out = Buffer.alloc(16);
      out.writeUInt32LE(1, 8); // FOPEN_DIRECT_IO: every read reaches us, none is served from the page cache
      reply(unique, 0, out);
    } else if (opcode === FUSE_READ) {
      const offset = Number(buf.readBigUInt64LE(48));
      const want = buf.readUInt32LE(56);
      if (offset + want <= serveBytes) {
        const data = Buffer.alloc(want);
        const got = fs.readSync(src, data, 0, want, offset);
        reply(unique, 0, data.subarray(0, got));
      } else pending.add(unique); // no answer: the reader waits as on a hung share
    } else if (opcode === FUSE_INTERRUPT) {
      // The reader got a signal (a fatal one: it is being killed): let it go, as NFS does.
      const target = buf.readBigUInt64LE(40);
      if (pending.delete(target)) reply(target, EINTR);
    } else if (opcode === FUSE_RELEASE || opcode === FUSE_FLUSH) reply(unique, 0);
    else if (opcode === FUSE_DESTROY) return;
    else reply(unique, ENOSYS);
  }
}

main();
