"""Client API codecs: a wire body in, a `ClientRequest` out; results and chunks back to bytes."""
