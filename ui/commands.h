/* The headless subcommands of bilora. Each takes the arguments after its
 * name and returns the process exit status. */
#ifndef BILORA_UI_COMMANDS_H
#define BILORA_UI_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);

#endif
