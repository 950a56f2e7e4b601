//! The `coffer` command: the server and its client.

/// mimalloc rather than the system allocator: a request allocates and
/// frees many small buffers across threads, on which glibc's allocator
/// spends a measurable share of a read. Without transparent huge pages
/// (`no_thp`), so an idle server stays as small as with glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    coffer::cli::main()
}
