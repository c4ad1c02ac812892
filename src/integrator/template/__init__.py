"""Where a service's source comes from: the Flask template (`new`), a copy (`clone`), or an
existing project (`init`). `files/` is the template itself, as real files."""
