// `npm start`: the main job. The embedded all-in-one node (proxy + broker + metadata on local
// storage) arrives with the proxy issue; until then this says so and checks that the runtime loads.
import { Actor, ActorRegistry } from "@strait/core"
import { Deferred, Effect } from "effect"

type Ping = { readonly reply: Actor.Reply<string> }

const selfCheck = Effect.scoped(Effect.gen(function*() {
  const actors = yield* ActorRegistry.make<string, Ping, never>("self-check", (key) =>
    Actor.make<string, Ping, never>({
      name: key,
      init: Effect.succeed(key),
      handle: (name, message) => Deferred.succeed(message.reply, `${name} is up`)
    }))
  const actor = yield* actors.get("core")
  return yield* actor.ask<string>((reply) => ({ reply }))
}))

const answer = await Effect.runPromise(selfCheck)
console.log(`Strait on Node ${process.version}: ${answer}.`)
console.log("The embedded all-in-one node (strait dev) is not built yet; see README.md, 'Status'.")
