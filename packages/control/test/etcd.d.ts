export interface RunningEtcd {
    readonly endpoint: string;
    readonly stop: () => Promise<void>;
}
export declare const startEtcd: () => Promise<RunningEtcd>;
//# sourceMappingURL=etcd.d.ts.map