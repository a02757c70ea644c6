//! One connection's bytes as a listener's chunk watcher follows them (`http_binding`'s
//! `follow_chunked_framing`): whatever the bytes, the watcher must not panic, and its
//! conclusion (requests read, request flagged for an oversized chunked body, still following)
//! must be the same whether the bytes arrive at once, byte by byte, or split where the first
//! input bytes say.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, rest)) = data.split_first() else {
        return;
    };
    let Some((&limit, stream)) = rest.split_first() else {
        return;
    };
    let max_body = usize::from(limit) * 4;
    let max_head = 64;
    let whole = http_binding::follow_chunked_framing([stream], max_body, max_head);
    let bytewise = http_binding::follow_chunked_framing(stream.chunks(1), max_body, max_head);
    assert_eq!(whole, bytewise, "byte by byte");
    let step = usize::from(cuts).max(1);
    let split = http_binding::follow_chunked_framing(stream.chunks(step), max_body, max_head);
    assert_eq!(whole, split, "in pieces of {step}");
});
