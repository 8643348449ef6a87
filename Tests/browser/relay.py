#!/usr/bin/env python3
"""A TCP relay that adds one-way delay with jitter in both directions: the latency half of a cell link.

Usage: relay.py LISTEN_PORT TARGET_PORT DELAY_MS JITTER_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to 127.0.0.1:TARGET_PORT. Each chunk
read from either side is written to the other DELAY_MS plus a random 0..JITTER_MS later, never
before the chunk read before it (a link does not reorder bytes). This kernel has no netem qdisc, so
the delay lives here; the rate limit and the queue are the kernel's (htb on the namespace's `lo`,
Tests/browser/testbed.py). Runs until killed; prints "ready" once listening.
"""
import asyncio
import random
import sys


async def pump(reader, writer, delay, jitter):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        last = 0.0
        try:
            while data := await reader.read(65536):
                due = max(last, loop.time() + delay + random.uniform(0, jitter))
                last = due
                await queue.put((due, data))
        except (ConnectionError, OSError):
            pass
        await queue.put((None, None))

    async def write():
        try:
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    await asyncio.gather(read(), write())


async def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay, jitter = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay, jitter),
                             pump(server_reader, client_writer, delay, jitter))
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
