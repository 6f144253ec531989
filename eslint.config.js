// Lint for the whole workspace. The rules that matter most here keep runtime code deterministic:
// time comes from Clock and randomness from Random, so the simulator can replay any run from a seed.
import tseslint from "typescript-eslint"

/** Files allowed to touch the outside world directly: process entry points and adapters. */
export const entryPointsAndAdapters = [
  "packages/*/src/**/main.ts",
  "packages/*/src/**/bin.ts",
  "packages/*/src/**/cli.ts",
  "packages/*/src/**/adapters/**",
  "packages/*/src/**/adapter/**"
]

const why = "runtime code takes time from Clock and randomness from Random (ARCHITECTURE.md §8)"

/** Bans ambient time, timers and randomness. */
export const determinismRules = {
  "no-restricted-properties": ["error",
    { object: "Date", property: "now", message: `Date.now: ${why}` },
    { object: "Math", property: "random", message: `Math.random: ${why}` },
    { object: "performance", property: "now", message: `performance.now: ${why}` },
    { object: "crypto", property: "randomUUID", message: `crypto.randomUUID: ${why}` },
    { object: "globalThis", property: "setTimeout", message: `setTimeout: ${why}` },
    { object: "globalThis", property: "setInterval", message: `setInterval: ${why}` },
    { object: "globalThis", property: "setImmediate", message: `setImmediate: ${why}` }
  ],
  "no-restricted-globals": ["error",
    { name: "setTimeout", message: `setTimeout: ${why}` },
    { name: "setInterval", message: `setInterval: ${why}` },
    { name: "setImmediate", message: `setImmediate: ${why}` }
  ],
  "no-restricted-imports": ["error", {
    paths: [
      { name: "node:timers", message: `timers: ${why}` },
      { name: "timers", message: `timers: ${why}` },
      { name: "node:timers/promises", message: `timers: ${why}` },
      { name: "node:perf_hooks", importNames: ["performance"], message: `performance: ${why}` },
      { name: "node:crypto", importNames: ["randomUUID", "randomBytes", "randomInt"], message: `crypto randomness: ${why}` }
    ]
  }],
  "no-restricted-syntax": ["error",
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `new Date(): ${why}` },
    { selector: "MemberExpression[property.name='randomUUID']", message: `randomUUID: ${why}` }
  ]
}

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/build/**", "native/build/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-namespace": "off",
      "require-yield": "off"
    }
  },
  {
    files: ["packages/*/src/**/*.ts"],
    ignores: entryPointsAndAdapters,
    rules: determinismRules
  }
)
