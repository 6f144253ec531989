// A real etcd for the specifications (`.ci/run` installs Debian's etcd-server).
export { type RunningEtcd, start as startEtcd } from "../src/adapters/EtcdProcess.ts"
