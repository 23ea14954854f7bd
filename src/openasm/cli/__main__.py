from openasm.cli import main

main()
