/**
 * Accepted sockets that read into one buffer shared by all of a server's plain connections
 * (net's `onread`), instead of a fresh Buffer and a readable stream's 'data' event per read.
 * That path costs several µs of every round trip (most when client and server share a core:
 * bench/tools/profile-remote.js), as much as the rest of a 'mapped' WRITE's server work.
 *
 * One buffer serves every connection because a read's callback runs to completion before the
 * next read anywhere in the process (libuv reads, then calls back, on this one thread), and
 * whatever the frame reader keeps past a callback it copies (transientChunks).
 *
 * net.Server has no onread option, so the server listens with pauseOnConnect and each accepted
 * socket, not yet reading, hands its handle to a new Socket made with onread; the first is then
 * destroyed without its handle. `_handle` is private to net: if it is not what this expects
 * (another Node, a TLS socket), the socket is left as it is and reads with 'data'.
 */
import * as net from 'node:net';

export const SHARED_READ_BYTES = 64 * 1024;

interface StreamHandle {
  readStart(): number;
  readStop(): number;
}

/**
 * The socket re-made to read with onread into `buffer`, each read handed to `onChunk` (a view
 * valid only during the call); undefined when it cannot be (then `socket` is untouched).
 * `socket` must come from a server listening with pauseOnConnect: nothing has been read yet.
 */
export function readIntoShared(socket: net.Socket, buffer: Buffer, onChunk: (chunk: Buffer) => void): net.Socket | undefined {
  const holder = socket as unknown as { _handle: StreamHandle | null };
  const handle = holder._handle;
  if (!(socket instanceof net.Socket) || socket.constructor !== net.Socket || typeof handle?.readStart !== 'function' || typeof handle.readStop !== 'function') {
    return undefined;
  }
  holder._handle = null;
  let adopted: net.Socket;
  try {
    adopted = new net.Socket({
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer,
        callback: (bytes: number): boolean => {
          onChunk(buffer.subarray(0, bytes));
          return true;
        },
      },
    } as unknown as net.SocketConstructorOpts);
  } catch {
    holder._handle = handle; // a Node that refuses this: the socket stays as it was
    return undefined;
  }
  // Without its handle, destroy() only settles the server's connection count and emits 'close'.
  socket.destroy();
  return adopted;
}
