//! The storm lab: replays pool incidents against stormpool and its peers.

fn main() {
    println!("stormlab: not yet built");
}
