fn main() {
    println!("percore");
}
