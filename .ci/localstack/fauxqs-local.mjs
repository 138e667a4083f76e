// fauxqs-local.mjs — the SNS/SQS emulator fauxqs bound to 127.0.0.1.
import { buildApp } from "fauxqs";
const port = Number(process.env.FAUXQS_PORT ?? 4566);
const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
await app.listen({ port, host: "127.0.0.1" });
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => app.close().then(() => process.exit(0)));
