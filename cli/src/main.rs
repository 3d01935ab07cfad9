fn main() {
    println!("strata {}", strata_engine::VERSION);
}
