#!/usr/bin/env python3
"""Writes the hand-made fuzz seeds of fuzz/seeds/ (from the format specifications, not
from memlens code): run from the repository root, `python3 fuzz/seeds/make-seeds.py`.

- walker/x86_64-4level: a 4-level x86-64 table chain (L4 0x1000 -> L3 0x2000 -> L2 0x3000
  -> L1 0x4000 -> page 0x5000) mapping VA 0 and 0x1000, plus a 2 MiB large page at L2.
- walker/x86_64-selfmap: a PML4 whose entry 0x1ed points at itself (Windows-style).
- linux_btf/task_struct: a BTF blob (magic 0xeb9f, version 1) with `int`, a pointer, and
  `struct list_head { next; prev }` and `struct task_struct { int pid; struct list_head
  tasks; }` (kinds and layouts of the kernel's include/uapi/linux/btf.h).
- pipeline/raw-zero-page: 8 KiB of zeros with "Linux version" text (a raw image that
  detection accepts and the kernel search rejects).
"""
import os, struct

root = os.path.dirname(os.path.abspath(__file__))


def put(path, data):
    p = os.path.join(root, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def walker(arch, lower, upper, vas, mem):
    head = bytes([arch]) + struct.pack("<QQ", lower, upper) + bytes([len(vas)])
    return head + b"".join(struct.pack("<Q", v) for v in vas) + bytes(mem)


mem = bytearray(0x6000)
P, RW, PS = 1, 2, 0x80
struct.pack_into("<Q", mem, 0x1000, 0x2000 | P | RW)
struct.pack_into("<Q", mem, 0x2000, 0x3000 | P | RW)
struct.pack_into("<Q", mem, 0x3000, 0x4000 | P | RW)
struct.pack_into("<Q", mem, 0x3008, 0x200000 | P | RW | PS)
struct.pack_into("<Q", mem, 0x4000, 0x5000 | P | RW)
struct.pack_into("<Q", mem, 0x4008, 0x5000 | P)
mem[0x5000:0x5010] = b"MEMLENS-SEED-PG!"
put("walker/x86_64-4level", walker(0, 0x1000, 0, [0, 0x1000, 0x200000, 0xFFFF800000000000], mem))
self_map = bytearray(0x2000)
struct.pack_into("<Q", self_map, 0x1000 + 0x1ED * 8, 0x1000 | P | RW)
put("walker/x86_64-selfmap", walker(0, 0x1000, 0, [0xFFFFF6FB7DBED000], self_map))

strings = b"\0int\0list_head\0next\0prev\0task_struct\0pid\0tasks\0"
off = lambda s: strings.index(s.encode() + b"\0")
types = b""
# 1: int, 4 bytes (kind 1 INT, encoding SIGNED, 32 bits)
types += struct.pack("<III", off("int"), 1 << 24, 4) + struct.pack("<I", (1 << 24) | 32)
# 2: pointer to 3 (kind 2 PTR)
types += struct.pack("<III", 0, 2 << 24, 3)
# 3: struct list_head { struct list_head *next, *prev; } (kind 4 STRUCT, 2 members)
types += struct.pack("<III", off("list_head"), (4 << 24) | 2, 16)
types += struct.pack("<III", off("next"), 2, 0) + struct.pack("<III", off("prev"), 2, 64)
# 4: struct task_struct { int pid; struct list_head tasks; } (bit offsets)
types += struct.pack("<III", off("task_struct"), (4 << 24) | 2, 24)
types += struct.pack("<III", off("pid"), 1, 0) + struct.pack("<III", off("tasks"), 3, 64)
hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
put("linux_btf/task_struct", hdr + types + strings)

raw = bytearray(0x2000)
raw[0x1000:0x1000 + 30] = b"Linux version 6.1.0 (seed) #1\n"
put("pipeline/raw-zero-page", raw)
