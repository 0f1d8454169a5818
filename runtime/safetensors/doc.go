// Package safetensors reads and writes checkpoints in the safetensors format.
//
// Reading is strict: [Open] maps a file read-only and rejects anything the
// format does not allow (duplicate names, gaps or overlaps between tensors,
// size mismatches, unknown dtypes, oversized or malformed headers, truncated
// files), reporting a [*FormatError] that names the file and the tensor.
// [OpenDir] and [OpenFiles] assemble a sharded checkpoint and check it against
// its index without ever following a file name out of the checkpoint
// directory. Every file of an input goes through [OpenInput] (or
// [ReadInput], which caps its size): plain names, links only inside the
// directory (or a hub cache snapshot's blobs), regular files only, opened
// without blocking. Mappings are registered with package fault, so a file
// truncated under a reader is an error naming it, not a crash.
//
// Writing is plan first: [NewLayout] fixes the header and every tensor's
// offset before any data exists, in the order the reference (Rust/Python)
// writer uses, so [Create] can size the file up front and callers can fill
// tensors from many goroutines with positioned writes ([Writer.WriteAt]) or
// kernel-side copies ([Writer.CopyFrom]). [PlanShards] splits a checkpoint by
// size, [NewIndex] and [Index.Encode] produce the Hugging Face index file, and
// [OutputDir] makes the whole output directory appear atomically.
package safetensors
