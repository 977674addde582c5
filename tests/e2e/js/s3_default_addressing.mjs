// The AWS SDK for JavaScript v3's S3 client exactly as a newcomer configures it: an endpoint and
// credentials, nothing else, so it addresses buckets virtual-hosted style
// (`<bucket>.localhost:<port>`). The only addition is name resolution of `*.localhost` to
// 127.0.0.1 (systemd-resolved and browsers do it; glibc here does not). Prints what it read as
// one JSON line.
import http from "node:http";
import dns from "node:dns";
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, ListObjectsV2Command }
  from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const lookup = (host, options, callback) =>
  dns.lookup(host.endsWith(".localhost") ? "127.0.0.1" : host, options, callback);
const urls = [];
const client = new S3Client({
  endpoint: process.env.ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.AKID, secretAccessKey: process.env.SECRET },
  requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ lookup }) }),
});
client.middlewareStack.add((next) => async (args) => {
  urls.push(`${args.request.hostname}:${args.request.port}${args.request.path}`);
  return next(args);
}, { step: "finalizeRequest", name: "recordUrls" });

const bucket = process.env.BUCKET;
await client.send(new CreateBucketCommand({ Bucket: bucket }));
await client.send(new PutObjectCommand({ Bucket: bucket, Key: "hello.txt", Body: "hello from js" }));
const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "hello.txt" }));
const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
console.log(JSON.stringify({
  body: await got.Body.transformToString(),
  keys: (listed.Contents ?? []).map((o) => o.Key),
  urls,
}));
