/// The product's name and version, as lecture and course manifests record them.
public enum Product {
    public static let name = "coursepack"
    public static let version = "0.4.0"
}
