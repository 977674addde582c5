// The AWS SDK for JavaScript v3's SQS client (which checks MD5OfMessageBody on every send and
// receive) sends a message with attributes to an engine queue, a batch, and receives them back.
// Prints what it got as one JSON line.
import { SQSClient, GetQueueUrlCommand, SendMessageCommand, SendMessageBatchCommand,
  ReceiveMessageCommand, PurgeQueueCommand } from "@aws-sdk/client-sqs";

const client = new SQSClient({
  endpoint: process.env.ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: process.env.AKID, secretAccessKey: process.env.SECRET },
});
const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: process.env.QUEUE }));
const attributes = {
  team: { DataType: "String", StringValue: "platform" },
  retries: { DataType: "Number", StringValue: "3" },
};
const sent = await client.send(new SendMessageCommand({ QueueUrl, MessageBody: "from js", MessageAttributes: attributes }));
const batch = await client.send(new SendMessageBatchCommand({ QueueUrl, Entries: [
  { Id: "one", MessageBody: "batch one", MessageAttributes: { k: { DataType: "String", StringValue: "v" } } },
  { Id: "two", MessageBody: "batch two" },
] }));
const received = await client.send(new ReceiveMessageCommand({
  QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], VisibilityTimeout: 0 }));
await client.send(new PurgeQueueCommand({ QueueUrl }));
const after = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
console.log(JSON.stringify({
  sentMd5: sent.MD5OfMessageAttributes,
  batch: (batch.Successful ?? []).map((e) => [e.Id, e.MD5OfMessageAttributes ?? null]).sort(),
  received: (received.Messages ?? []).map((m) => ({
    body: m.Body, md5: m.MD5OfMessageAttributes ?? null, attributes: m.MessageAttributes ?? null })),
  afterPurge: (after.Messages ?? []).length,
}));
