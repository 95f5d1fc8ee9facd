from tbx_train.cli import main

main()
