import CLinux

/// Process-wide signal handling for the command line, the batch and the server. SIGINT and SIGTERM
/// set a flag that every FFmpeg operation in flight honours through its interrupt callback
/// (CFFmpegShims reads the same flag).
public enum Signals {
    /// Catches SIGINT and SIGTERM (and unblocks them, since a parent may have started the process
    /// with them blocked).
    public static func install() { cp_signals_install() }
    /// The signal number received, or nil.
    public static var received: Int32? {
        let s = cp_signal_received()
        return s == 0 ? nil : s
    }
    /// For a worker process: be killed when the parent `pid` dies, so a batch killed with SIGKILL
    /// leaves no orphan writing into its output. False if that parent is already gone.
    public static func dieWithParent(_ pid: Int32) -> Bool { cp_die_with_parent(pid) != 0 }
}
