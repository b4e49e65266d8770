from psenet_stream.cli import main

main()
