# Varnish in front of two `syndicator serve --role web` nodes (README: "Running on several machines").
# The web nodes purge what each publish changes: give them this cache in purge_caches
# (purge_caches: [http://127.0.0.1:6081/]). Run: varnishd -a :6081 -f /etc/varnish/syndicator.vcl
vcl 4.1;

import directors;

probe healthz {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

backend web1 { .host = "127.0.0.1"; .port = "8081"; .probe = healthz; }
backend web2 { .host = "127.0.0.1"; .port = "8082"; .probe = healthz; }

# who may purge: the web nodes
acl purgers { "127.0.0.1"; "::1"; }

sub vcl_init {
    new nodes = directors.round_robin();
    nodes.add_backend(web1);
    nodes.add_backend(web2);
}

sub vcl_recv {
    set req.backend_hint = nodes.backend();
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        # every copy of the path (gzip and identity), whatever host it was fetched under
        ban("obj.http.X-Url == " + req.url);
        return (synth(200, "Purged"));
    }
    if (req.url == "/healthz") {
        return (pass);
    }
    # the encoding the client takes (Varnish has reduced it to gzip or nothing), for the fetch
    set req.http.X-Encoding = req.http.Accept-Encoding;
}

# Fetch what the client takes, as the web nodes answer it: their precompressed gzip bytes or
# the identity bytes, each with its own strong ETag (Varnish would otherwise fetch gzip for
# everyone and unzip it, answering identity clients with the gzip bytes' ETag made weak).
sub vcl_backend_fetch {
    if (bereq.http.X-Encoding) {
        set bereq.http.Accept-Encoding = bereq.http.X-Encoding;
    } else {
        unset bereq.http.Accept-Encoding;
    }
    unset bereq.http.X-Encoding;
}

# One site: the cache key is the path and the encoding, whatever the host name.
sub vcl_hash {
    hash_data(req.url);
    hash_data(req.http.X-Encoding);
    return (lookup);
}

sub vcl_backend_response {
    set beresp.http.X-Url = bereq.url;  # what a purge matches
}

sub vcl_deliver {
    unset resp.http.X-Url;
}
