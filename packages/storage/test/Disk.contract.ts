// The Disk contract: the real disk and the simulated one run this suite unchanged, so the storage
// engine cannot tell them apart until a fault is injected.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, type Scope } from "effect"
import { Disk } from "../src/index.ts"

export interface ContractSubject {
  readonly name: string
  readonly layer: Layer.Layer<Disk.Disk>
  /** A fresh empty directory for one test, removed (where that means anything) with the scope. */
  readonly directory: Effect.Effect<string, unknown, Disk.Disk | Scope.Scope>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
export const bytes = (text: string) => encoder.encode(text)
export const text = (data: Uint8Array) => decoder.decode(data)

/** How an effect ended: "success", the error's tag, or for a `DiskIOError` "DiskIOError CODE". */
export const outcome = <A, R>(effect: Effect.Effect<A, Disk.DiskError, R>) =>
  Effect.match(effect, {
    onFailure: (error) => error._tag === "DiskIOError" ? `DiskIOError ${error.code}` : error._tag,
    onSuccess: () => "success"
  })

export const diskContract = (subject: ContractSubject) =>
  describe(`Disk contract: ${subject.name}`, () => {
    const run = <A, E>(body: (directory: string, disk: Disk.Disk["Service"]) => Effect.Effect<A, E, Disk.Disk | Scope.Scope>) =>
      Effect.gen(function*() {
        const directory = yield* subject.directory
        const disk = yield* Disk.Disk
        return yield* body(directory, disk)
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(subject.layer)))

    it.effect("bytes written at a position read back from that position", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("hello world")])
          assert.strictEqual(text(yield* file.read(0, 11)), "hello world")
          assert.strictEqual(text(yield* file.read(6, 5)), "world")
        })))

    it.effect("reads come back as plain Uint8Arrays", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("abc")])
          const data = yield* file.read(0, 3)
          assert.strictEqual(Object.getPrototypeOf(data), Uint8Array.prototype)
        })))

    it.effect("a write at a position replaces only the bytes it covers", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("aaaaaaaaaa")])
          yield* file.write(3, [bytes("BBB")])
          assert.strictEqual(text(yield* file.read(0, 10)), "aaaBBBaaaa")
          assert.strictEqual(yield* file.size, 10)
        })))

    it.effect("a vectored write lays its chunks back to back", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(2, [bytes("one"), new Uint8Array(0), bytes("-two"), bytes("-three")])
          assert.strictEqual(yield* file.size, 15)
          assert.strictEqual(text((yield* file.read(2, 100))), "one-two-three")
        })))

    it.effect("a vectored write of more chunks than the system takes at once lands whole", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          // Linux takes at most 1024 chunks (IOV_MAX) per pwritev
          const count = 2500
          const chunks = Array.from({ length: count }, (_, i) => new Uint8Array(1000).fill(i & 0xff))
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, chunks)
          assert.strictEqual(yield* file.size, count * 1000)
          const data = yield* file.read(0, count * 1000)
          assert.strictEqual(data.length, count * 1000)
          for (let i = 0; i < count; i++) {
            assert.strictEqual(data[i * 1000], i & 0xff)
            assert.strictEqual(data[i * 1000 + 999], i & 0xff)
          }
        })))

    it.effect("a read past the end returns only the bytes that exist", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("12345")])
          assert.strictEqual(text(yield* file.read(3, 10)), "45")
          assert.strictEqual((yield* file.read(5, 10)).length, 0)
          assert.strictEqual((yield* file.read(100, 10)).length, 0)
        })))

    it.effect("a write past the end leaves a gap that reads as zeros", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("ab")])
          yield* file.write(6, [bytes("cd")])
          assert.strictEqual(yield* file.size, 8)
          assert.deepStrictEqual(Array.from(yield* file.read(0, 8)), [97, 98, 0, 0, 0, 0, 99, 100])
        })))

    it.effect("size counts every byte written, synced or not", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          assert.strictEqual(yield* file.size, 0)
          yield* file.write(0, [new Uint8Array(100)])
          yield* file.datasync
          yield* file.write(100, [new Uint8Array(28)])
          assert.strictEqual(yield* file.size, 128)
        })))

    it.effect("truncate cuts a file, and extends it with zeros", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("abcdefgh")])
          yield* file.truncate(3)
          assert.strictEqual(yield* file.size, 3)
          assert.strictEqual(text(yield* file.read(0, 100)), "abc")
          yield* file.truncate(5)
          assert.deepStrictEqual(Array.from(yield* file.read(0, 100)), [97, 98, 99, 0, 0])
        })))

    it.effect("opening with create does not truncate an existing file", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          yield* Effect.scoped(Effect.gen(function*() {
            const file = yield* disk.open(`${dir}/a`, { create: true })
            yield* file.write(0, [bytes("keep me")])
            yield* file.datasync
          }))
          const again = yield* disk.open(`${dir}/a`, { create: true })
          assert.strictEqual(yield* again.size, 7)
          assert.strictEqual(text(yield* again.read(0, 7)), "keep me")
        })))

    it.effect("two handles on one file see each other's writes", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const writer = yield* disk.open(`${dir}/a`, { create: true })
          const reader = yield* disk.open(`${dir}/a`, { create: false })
          yield* writer.write(0, [bytes("shared")])
          assert.strictEqual(text(yield* reader.read(0, 6)), "shared")
        })))

    it.effect("datasync and syncDirectory succeed on a healthy disk", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("x")])
          yield* file.datasync
          yield* disk.syncDirectory(dir)
          assert.strictEqual(text(yield* file.read(0, 1)), "x")
        })))

    it.effect("list names a directory's files and directories, sorted", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          for (const name of ["b", "00000000000000001000.log", "a", "00000000000000000000.log"]) {
            yield* disk.open(`${dir}/${name}`, { create: true })
          }
          yield* disk.makeDirectory(`${dir}/index`)
          assert.deepStrictEqual(yield* disk.list(dir), [
            "00000000000000000000.log",
            "00000000000000001000.log",
            "a",
            "b",
            "index"
          ])
          assert.deepStrictEqual(yield* disk.list(`${dir}/index`), [])
        })))

    it.effect("makeDirectory creates the missing parents and accepts an existing directory", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          yield* disk.makeDirectory(`${dir}/x/y/z`)
          yield* disk.makeDirectory(`${dir}/x/y`)
          assert.deepStrictEqual(yield* disk.list(`${dir}/x`), ["y"])
          assert.deepStrictEqual(yield* disk.list(`${dir}/x/y`), ["z"])
          yield* disk.open(`${dir}/x/y/z/f`, { create: true })
          assert.deepStrictEqual(yield* disk.list(`${dir}/x/y/z`), ["f"])
        })))

    it.effect("remove deletes a file", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          yield* Effect.scoped(disk.open(`${dir}/a`, { create: true }))
          yield* disk.remove(`${dir}/a`)
          assert.deepStrictEqual(yield* disk.list(dir), [])
          assert.strictEqual(yield* outcome(disk.open(`${dir}/a`, { create: false })), "FileNotFound")
        })))

    it.effect("a removed file stays readable through a handle opened before", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* disk.open(`${dir}/a`, { create: true })
          yield* file.write(0, [bytes("still here")])
          yield* disk.remove(`${dir}/a`)
          assert.strictEqual(text(yield* file.read(0, 10)), "still here")
        })))

    it.effect("rename moves a file and replaces the target", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          yield* Effect.scoped(Effect.gen(function*() {
            const source = yield* disk.open(`${dir}/new`, { create: true })
            yield* source.write(0, [bytes("new")])
            const target = yield* disk.open(`${dir}/current`, { create: true })
            yield* target.write(0, [bytes("old content")])
          }))
          yield* disk.rename(`${dir}/new`, `${dir}/current`)
          assert.deepStrictEqual(yield* disk.list(dir), ["current"])
          const file = yield* disk.open(`${dir}/current`, { create: false })
          assert.strictEqual(yield* file.size, 3)
          assert.strictEqual(text(yield* file.read(0, 100)), "new")
        })))

    it.effect("a missing file or directory is FileNotFound", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          assert.strictEqual(yield* outcome(disk.open(`${dir}/missing`, { create: false })), "FileNotFound")
          assert.strictEqual(yield* outcome(disk.open(`${dir}/no/such/dir/f`, { create: true })), "FileNotFound")
          assert.strictEqual(yield* outcome(disk.remove(`${dir}/missing`)), "FileNotFound")
          assert.strictEqual(yield* outcome(disk.rename(`${dir}/missing`, `${dir}/other`)), "FileNotFound")
          assert.strictEqual(yield* outcome(disk.list(`${dir}/missing`)), "FileNotFound")
          assert.strictEqual(yield* outcome(disk.syncDirectory(`${dir}/missing`)), "FileNotFound")
        })))

    it.effect("a directory is not a file", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          yield* disk.makeDirectory(`${dir}/d`)
          assert.strictEqual(yield* outcome(disk.open(`${dir}/d`, { create: true })), "DiskIOError EISDIR")
          assert.strictEqual(yield* outcome(disk.remove(`${dir}/d`)), "DiskIOError EISDIR")
        })))

    it.effect("a closed file refuses every operation", () =>
      run((dir, disk) =>
        Effect.gen(function*() {
          const file = yield* Effect.scoped(disk.open(`${dir}/a`, { create: true }))
          assert.strictEqual(yield* outcome(file.write(0, [bytes("x")])), "DiskIOError EBADF")
          assert.strictEqual(yield* outcome(file.read(0, 1)), "DiskIOError EBADF")
          assert.strictEqual(yield* outcome(file.datasync), "DiskIOError EBADF")
          assert.strictEqual(yield* outcome(file.size), "DiskIOError EBADF")
          assert.strictEqual(yield* outcome(file.truncate(0)), "DiskIOError EBADF")
        })))
  })
