/** gRPC channel credentials from a client's TLS settings (TallyClient's `tls` option, tallyctl's --ca/--cert/--key). */
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import type { ClientTlsOptions } from "../util/tls.js";

/** Channel credentials for a client: the CA must sign the node's certificate; the hostname is checked. */
export function clientTlsCredentials(tls: ClientTlsOptions): grpc.ChannelCredentials {
  const pem = (value: string | Buffer | undefined, what: string): Buffer | null => {
    if (value === undefined) return null;
    if (Buffer.isBuffer(value)) return value;
    if (value.startsWith("-----BEGIN")) return Buffer.from(value);
    try {
      return readFileSync(value);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${value}: ${(error as Error).message}`, { cause: error });
    }
  };
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new Error("tls: a client certificate needs its key and a key its certificate");
  return grpc.credentials.createSsl(pem(tls.ca, "CA"), pem(tls.key, "key"), pem(tls.cert, "certificate"));
}
