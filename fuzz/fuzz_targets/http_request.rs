//! An HTTP request as it arrives on a listener: the head parsed as hyper does (httparse),
//! then the binding's mapping to a request primitive (method, headers, path, query with
//! filter criteria, body decoding and the primitive checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = head.parse(data) else {
        return;
    };
    let (Some(method), Some(path)) = (head.method, head.path) else {
        return;
    };
    let mut builder = http::Request::builder().method(method).uri(path);
    for h in head.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    // What hyper would refuse before the binding sees it (an invalid method, URI or header).
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let body = &data[len..];
    if let Ok(primitive) = http_binding::primitive_from_http(&parts, body) {
        assert_eq!(primitive.rqi.is_empty(), false, "a primitive without rqi");
    }
});
