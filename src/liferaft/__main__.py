from liferaft.cli.main import main

main()
