package watchwire

// The keys of a batch's encodings (watcher.Batch.Encoded).
var (
	ProtoFrameKey any = protoFrameKey{}
	JSONKey       any = jsonBatchKey{}
)
