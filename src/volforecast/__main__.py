from volforecast.cli import main

main()
