/**
 * deploy/: the Dockerfile, compose file and Kubernetes manifests checked against each other and
 * against the config validator. No Kubernetes runs here, so this is what stands between a typo in a
 * port, label or probe path and a cluster that never becomes ready; the compose file also runs for
 * real in the CI rehearsal (test/deploy/compose.docker.ts).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { listenAddress, parseClusterConfig, type ClusterConfig } from "../../src/server/config/config.js";

const deploy = resolve(import.meta.dirname, "..", "..", "deploy");
const read = (path: string) => readFileSync(join(deploy, path), "utf8");
const port = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));
const host = (address: string) => address.slice(0, address.lastIndexOf(":"));

/** The Dockerfile's ENV instruction as a map (KEY=VALUE pairs, continuation lines joined). */
function imageEnv(): Record<string, string> {
  const text = read("Dockerfile").replace(/\\\n/g, " ");
  const line = text.split("\n").find((l) => l.startsWith("ENV "));
  if (line === undefined) throw new Error("deploy/Dockerfile has no ENV instruction");
  return Object.fromEntries(
    line
      .slice(4)
      .trim()
      .split(/\s+/)
      .map((pair) => pair.split("=", 2) as [string, string]),
  );
}

/** What one node's tallyd would load: the file plus the image's variables plus the container's. */
function nodeConfig(document: unknown, env: Record<string, string>, nodeId: number): ClusterConfig {
  return parseClusterConfig(document, "/etc/tally/cluster.yaml", { env: { ...imageEnv(), ...env }, nodeId });
}

describe("deploy/Dockerfile", () => {
  test("FROM a base given as a build arg, the entry point, and the listen ports it exposes", () => {
    const text = read("Dockerfile");
    expect(text).toMatch(/^ARG BASE_IMAGE=tally-base:node\d+$/m);
    expect(text).toMatch(/^FROM \$\{BASE_IMAGE\}$/m);
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/tally-entrypoint"\]$/m);
    const env = imageEnv();
    const exposed = /^EXPOSE (.*)$/m.exec(text)![1]!.split(/\s+/).map(Number);
    expect(exposed).toEqual([port(env.TALLY_NODE_CLIENT_LISTEN!), port(env.TALLY_NODE_PEER_LISTEN!), port(env.TALLY_NODE_METRICS_LISTEN!)]);
    expect(text).toContain(`VOLUME ["${env.TALLY_NODE_DATA_DIR}"]`);
  });
});

describe("deploy/compose.yaml", () => {
  const compose = parse(read("compose.yaml"), { merge: true }); // compose applies YAML merge keys (<<: *tally)
  const cluster = parse(read("compose-cluster.yaml"));
  const services = Object.entries(compose.services as Record<string, any>);

  test("three nodes by host name, each one's config valid as its tallyd would load it", () => {
    expect(services.map(([name]) => name)).toEqual(["tally-1", "tally-2", "tally-3"]);
    for (const [name, service] of services) {
      const id = Number(service.environment.TALLY_NODE_ID);
      expect(name).toBe(`tally-${id}`);
      expect(service.hostname).toBe(name);
      const config = nodeConfig(cluster, service.environment, id);
      const self = config.nodes.find((n) => n.id === id)!;
      for (const kind of ["client", "peer", "metrics"] as const) expect(host(self[kind]!), `${name} advertises its host name`).toBe(name);
      expect(listenAddress(self, "client")).toBe("0.0.0.0:7000");
      expect(self.dataDir).toBe("/data");
      expect(service.volumes).toContain(`${name}-data:/data`);
      expect(service.volumes).toContain("./compose-cluster.yaml:/etc/tally/cluster.yaml:ro");
      expect(service.networks).toEqual(["tally"]);
    }
    expect(Object.keys(compose.volumes)).toEqual(["tally-1-data", "tally-2-data", "tally-3-data"]);
  });

  test("client and ops ports published on 127.0.0.1 only; the peer port not at all", () => {
    for (const [name, service] of services) {
      const self = nodeConfig(cluster, service.environment, Number(service.environment.TALLY_NODE_ID)).nodes.find(
        (n) => `tally-${n.id}` === name,
      )!;
      const published = (service.ports as string[]).map(
        (mapping) => /^127\.0\.0\.1:\$\{TALLY_(?:OPS_)?PORT_\d:-\d+\}:(\d+)$/.exec(mapping)?.[1],
      );
      expect(
        published.every((p) => p !== undefined),
        `${name}: ${service.ports}`,
      ).toBe(true);
      expect(published.map(Number).sort()).toEqual([port(listenAddress(self, "client")!), port(listenAddress(self, "metrics")!)].sort());
      expect(published.map(Number)).not.toContain(port(listenAddress(self, "peer")!));
    }
  });
});

describe("deploy/k8s", () => {
  const documents = ["configmap.yaml", "services.yaml", "statefulset.yaml", "pdb.yaml"].flatMap((file) =>
    parseAllDocuments(read(`k8s/${file}`)).map((d) => d.toJS()),
  );
  const find = (kind: string, name: string) => {
    const found = documents.find((d) => d.kind === kind && d.metadata.name === name);
    if (found === undefined) throw new Error(`deploy/k8s has no ${kind} ${name}`);
    return found;
  };
  const statefulSet = find("StatefulSet", "tally");
  const pod = statefulSet.spec.template.spec;
  const container = pod.containers[0];
  const containerEnv: Record<string, string> = Object.fromEntries(
    container.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]),
  );
  const containerPort = (name: string): number => container.ports.find((p: any) => p.name === name).containerPort;
  const cluster = parse(find("ConfigMap", "tally-config").data["cluster.yaml"]);

  test("the kustomization lists every manifest", () => {
    expect(parse(read("k8s/kustomization.yaml")).resources.sort()).toEqual([
      "configmap.yaml",
      "pdb.yaml",
      "services.yaml",
      "statefulset.yaml",
    ]);
  });

  test("replicas match the config; node n is pod tally-(n-1) under the headless service, valid as each pod loads it", () => {
    expect(statefulSet.spec.replicas).toBe(cluster.nodes.length);
    expect(statefulSet.spec.podManagementPolicy).toBe("Parallel");
    const headless = find("Service", statefulSet.spec.serviceName);
    expect(headless.spec.clusterIP).toBe("None");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    for (let ordinal = 0; ordinal < statefulSet.spec.replicas; ordinal++) {
      const id = ordinal + 1; // deploy/entrypoint.sh
      const self = nodeConfig(cluster, containerEnv, id).nodes.find((n) => n.id === id)!;
      for (const [kind, portName] of [
        ["client", "client"],
        ["peer", "peer"],
        ["metrics", "ops"],
      ] as const) {
        expect(self[kind], `node ${id} ${kind}`).toBe(`tally-${ordinal}.${headless.metadata.name}:${containerPort(portName)}`);
        expect(port(listenAddress(self, kind)!), `node ${id} binds the ${portName} container port`).toBe(containerPort(portName));
      }
      expect(self.dataDir).toBe(container.volumeMounts.find((m: any) => m.name === "data").mountPath);
    }
    expect(statefulSet.spec.volumeClaimTemplates[0].metadata.name).toBe("data");
    expect(container.env.find((e: any) => e.name === "TALLY_POD_INDEX").valueFrom.fieldRef.fieldPath).toBe(
      "metadata.labels['apps.kubernetes.io/pod-index']",
    );
    expect(container.volumeMounts.find((m: any) => m.name === "config").mountPath).toBe("/etc/tally");
    expect(containerEnv.TALLY_CONFIG).toBe("/etc/tally/cluster.yaml");
  });

  test("probes: liveness /livez, readiness /readyz, on the ops port the node binds", () => {
    const opsHttp = readFileSync(resolve(deploy, "..", "src", "server", "ops", "ops-http.ts"), "utf8");
    for (const [probe, path] of [
      ["livenessProbe", "/livez"],
      ["readinessProbe", "/readyz"],
      ["startupProbe", "/livez"],
    ] as const) {
      expect(container[probe].httpGet, probe).toEqual({ path, port: "ops" });
      expect(opsHttp, `ops-http.ts serves ${path}`).toContain(`"${path}"`);
    }
  });

  test("services, the disruption budget and the pods agree on labels and ports", () => {
    const labels = statefulSet.spec.template.metadata.labels;
    expect(statefulSet.spec.selector.matchLabels).toEqual(labels);
    for (const service of documents.filter((d) => d.kind === "Service")) {
      expect(service.spec.selector, service.metadata.name).toEqual(labels);
      for (const p of service.spec.ports) expect(p.port, `${service.metadata.name} ${p.name}`).toBe(containerPort(p.targetPort));
    }
    const pdb = find("PodDisruptionBudget", "tally");
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pod.securityContext.runAsUser).toBe(10001);
  });
});
